// Ring alerting for every agent (docs/console.md, Ringing): tone, notification,
// title and icon while a call is offered; an aria-live region says each change.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const ASKED = 'switchboard-notifications-asked';
  const ICON = 'favicon.svg';
  const RINGING_ICON = 'favicon-ringing.svg';

  const reasons = new Map(); // why it rings ('reserved', 'incoming') -> caller text
  let quiet = false; // answered in the softphone: the state lags until Twilio says so
  let ringing = false;
  let savedTitle = null;
  let notification = null;
  let audio = null;
  let toneTimer = null;
  let lastState = null;

  function announce(text) {
    $('announcer').textContent = text;
  }

  function wakeAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      if (!audio) audio = new Context();
      if (audio.state === 'suspended') audio.resume().catch(() => {});
    } catch (_) { audio = null; }
  }
  for (const kind of ['pointerdown', 'keydown']) {
    document.addEventListener(kind, wakeAudio, { capture: true, passive: true });
  }

  function burst() {
    if (!audio || audio.state !== 'running') return;
    const t = audio.currentTime;
    const gain = audio.createGain();
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(0.12, t + 0.05);
    gain.gain.setValueAtTime(0.12, t + 1.15);
    gain.gain.linearRampToValueAtTime(0, t + 1.2);
    gain.connect(audio.destination);
    for (const frequency of [440, 480]) {
      const osc = audio.createOscillator();
      osc.frequency.value = frequency;
      osc.connect(gain);
      osc.start(t);
      osc.stop(t + 1.25);
    }
  }

  const canNotify = () => 'Notification' in window;

  function offerNotifications() {
    const button = $('notify');
    button.hidden = !(canNotify() && Notification.permission === 'default' && !localStorage.getItem(ASKED));
  }

  async function askNotifications() {
    $('notify').hidden = true;
    localStorage.setItem(ASKED, '1');
    let answer = 'denied';
    try { answer = await Notification.requestPermission(); } catch (_) { /* refused */ }
    announce(answer === 'granted' ? 'Call notifications are on.' : 'Call notifications are off.');
  }

  function notify(caller) {
    if (!canNotify() || Notification.permission !== 'granted') return;
    try {
      notification = new Notification('Incoming call', {
        body: caller, tag: 'switchboard-ringing', requireInteraction: true,
      });
      notification.onclick = () => { window.focus(); notification.close(); };
    } catch (_) { notification = null; } // e.g. Android Chrome wants a service worker
  }

  function icon(href) {
    const link = document.querySelector('link[rel="icon"]');
    if (link) link.setAttribute('href', href);
  }

  function update() {
    const should = reasons.has('incoming') || (reasons.has('reserved') && !quiet);
    if (should === ringing) return;
    ringing = should;
    document.body.dataset.ringing = String(ringing);
    if (ringing) {
      const caller = reasons.get('incoming') || reasons.get('reserved') || 'a caller';
      savedTitle = document.title;
      document.title = '☎ Ringing: ' + caller + ' — ' + savedTitle;
      icon(RINGING_ICON);
      announce('Incoming call from ' + caller + '.');
      notify(caller);
      burst();
      toneTimer = setInterval(burst, 3000);
    } else {
      if (savedTitle !== null) document.title = savedTitle;
      savedTitle = null;
      icon(ICON);
      clearInterval(toneTimer);
      toneTimer = null;
      if (notification) notification.close();
      notification = null;
    }
  }

  function set(reason, on, caller) {
    if (on) reasons.set(reason, caller || 'a caller');
    else reasons.delete(reason);
    update();
  }

  function hush() {
    quiet = true;
    update();
  }

  const said = {
    available: 'You are available.', reserved: 'A call is ringing for you.',
    on_call: 'You are on a call.', wrap_up: 'You are in wrap-up.', away: 'You are away.',
    offline: 'You are offline.',
  };

  document.addEventListener('switchboard:me', (e) => {
    const me = e.detail;
    if (!me) return;
    const reserved = me.state === 'reserved';
    if (!reserved) quiet = false;
    set('reserved', reserved, me.call ? (me.call.from || 'a withheld number') : 'a caller');
    if (me.state !== lastState) {
      if (lastState !== null && !(reserved && ringing)) announce(said[me.state] || 'You are ' + me.state + '.');
      lastState = me.state;
    }
  });

  document.addEventListener('switchboard:agent', offerNotifications);

  document.addEventListener('switchboard:sign-out', () => {
    reasons.clear();
    quiet = false;
    lastState = null;
    update();
    $('notify').hidden = true;
  });

  $('notify').addEventListener('click', askNotifications);

  window.SwitchboardAlerts = { announce, set, hush };
})();
