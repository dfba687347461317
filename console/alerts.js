// switchboard console: ring alerting, for every agent (softphone or not).
// While the agent is offered a call (state `reserved`), or the softphone has
// an incoming call: a ring tone made with Web Audio (no audio file), a
// desktop Notification (permission asked once, from a button: a user gesture),
// the tab's title and icon change; they come back once it stops. Every state
// change is also said in an aria-live region for screen readers.
// console.js and softphone.js talk to it through window.SwitchboardAlerts and
// the `switchboard:*` events console.js dispatches.
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

  // ---- the aria-live region ---------------------------------------------------
  function announce(text) {
    $('announcer').textContent = text;
  }

  // ---- the tone ----------------------------------------------------------------
  // A page may only start sound after a user gesture: the context is made (or
  // woken) on the first key or pointer press, typically the sign-in itself.
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

  // One burst of the North American ring (440 Hz + 480 Hz), softly faded in
  // and out so it does not click.
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

  // ---- the notification ----------------------------------------------------------
  const canNotify = () => 'Notification' in window;

  function offerNotifications() {
    const button = $('notify');
    button.hidden = !(canNotify() && Notification.permission === 'default' && !localStorage.getItem(ASKED));
  }

  async function askNotifications() {
    $('notify').hidden = true;
    // Asked once: a dismissed prompt is not offered again in this browser.
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

  // ---- ringing on and off ------------------------------------------------------------
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

  // `on`: ring for `reason` (with the caller's text), or stop ringing for it.
  function set(reason, on, caller) {
    if (on) reasons.set(reason, caller || 'a caller');
    else reasons.delete(reason);
    update();
  }

  // The call was answered here: the console stops ringing although the agent
  // stays `reserved` until Twilio's callback moves it on.
  function hush() {
    quiet = true;
    update();
  }

  // ---- what console.js says --------------------------------------------------------
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
      // Ringing says itself (with the caller) when it starts.
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
