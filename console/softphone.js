// The softphone of a `client:` agent (docs/console.md, Softphone): comments are
// kept short, this file is embedded in a binary with a 12 MB budget.
'use strict';
(() => {
  const SDK_PATH = '/console/vendor/twilio-voice-sdk-2.18.5.min.js';
  const $ = (id) => document.getElementById(id);
  const alerts = () => window.SwitchboardAlerts;

  let session = 0; // bumped at sign-out: an old session's promises do nothing
  let device = null;
  let call = null;
  let fetchToken = null;

  function loadSdk() {
    if (window.Twilio && window.Twilio.Device) return Promise.resolve(window.Twilio);
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = SDK_PATH;
      script.onload = () => (window.Twilio && window.Twilio.Device
        ? resolve(window.Twilio) : reject(new Error('the Voice SDK did not start')));
      script.onerror = () => reject(new Error('the Voice SDK did not load'));
      document.head.appendChild(script);
    });
  }

  function status(text, kind) {
    const p = $('phone-status');
    p.textContent = text;
    p.className = 'phone-status' + (kind ? ' ' + kind : '');
  }

  function show(ids) {
    for (const id of ['phone-answer', 'phone-decline', 'phone-mute', 'phone-hangup']) {
      $(id).hidden = !ids.includes(id);
    }
  }

  function callerOf(c) {
    const from = c && c.parameters && c.parameters.From;
    return from ? from.replace(/^client:/, '') : 'a withheld number';
  }

  function incoming(c, mine) {
    if (mine !== session) return;
    if (call) { c.reject(); return; } // one call at a time
    call = c;
    const caller = callerOf(c);
    $('phone-caller').textContent = 'Incoming call from ' + caller;
    $('phone-caller').hidden = false;
    show(['phone-answer', 'phone-decline']);
    status('Ringing', 'ringing');
    alerts().set('incoming', true, caller);
    const over = (what) => () => { if (call === c) ended(what); };
    c.on('cancel', over('The caller hung up.'));
    c.on('reject', over('Call declined.'));
    c.on('disconnect', over('Call ended.'));
    c.on('error', (e) => { status('Call error: ' + (e && e.message ? e.message : e), 'error'); });
  }

  function answer() {
    if (!call) return;
    call.accept();
    alerts().set('incoming', false);
    alerts().hush();
    $('phone-caller').textContent = 'On a call with ' + callerOf(call);
    $('phone-mute').setAttribute('aria-pressed', 'false');
    show(['phone-mute', 'phone-hangup']);
    status('Connected', 'on-call');
    alerts().announce('Call answered.');
  }

  function decline() {
    if (!call) return;
    const c = call;
    ended('Call declined.');
    c.reject();
  }

  function toggleMute() {
    if (!call) return;
    const muted = !call.isMuted();
    call.mute(muted);
    $('phone-mute').setAttribute('aria-pressed', String(muted));
    alerts().announce(muted ? 'Muted.' : 'Unmuted.');
  }

  function hangUp() {
    if (!call) return;
    const c = call;
    ended('Call ended.');
    c.disconnect();
  }

  function ended(text) {
    call = null;
    $('phone-caller').hidden = true;
    show([]);
    alerts().set('incoming', false);
    status(device ? 'Ready: calls ring here' : 'Off', device ? 'ready' : '');
    alerts().announce(text);
  }

  async function renew(mine) {
    try {
      const minted = await fetchToken();
      if (mine === session && device) device.updateToken(minted.token);
    } catch (e) {
      if (mine === session) status('Cannot renew the phone\'s token: ' + e.message, 'error');
    }
  }

  async function start(detail, mine) {
    fetchToken = detail.voiceToken;
    $('softphone').hidden = false;
    status('Starting…');
    let Twilio;
    let minted;
    try {
      [Twilio, minted] = await Promise.all([loadSdk(), fetchToken()]);
    } catch (e) {
      if (mine === session) status('The phone cannot start: ' + e.message, 'error');
      return;
    }
    if (mine !== session) return;
    device = new Twilio.Device(minted.token, { closeProtection: true, tokenRefreshMs: 60000 });
    if (device.audio && typeof device.audio.incoming === 'function') device.audio.incoming(false);
    device.on('registering', () => { if (mine === session) status('Connecting…'); });
    device.on('registered', () => {
      if (mine !== session) return;
      status('Ready: calls ring here', 'ready');
      alerts().announce('Your phone is ready.');
    });
    device.on('unregistered', () => { if (mine === session) status('Off'); });
    device.on('error', (e) => {
      if (mine !== session) return;
      status('Phone error: ' + (e && e.message ? e.message : e), 'error');
      alerts().announce('Phone error.');
      if (e && e.code === 20104) renew(mine);
    });
    device.on('tokenWillExpire', () => renew(mine));
    device.on('incoming', (c) => incoming(c, mine));
    try {
      await device.register();
    } catch (e) {
      if (mine === session) status('Phone error: ' + e.message, 'error');
    }
  }

  function stop() {
    session++;
    if (call) { try { call.disconnect(); } catch (_) { /* gone */ } }
    call = null;
    if (device) { try { device.destroy(); } catch (_) { /* gone */ } }
    device = null;
    $('softphone').hidden = true;
    $('phone-caller').hidden = true;
    show([]);
  }

  document.addEventListener('switchboard:agent', (e) => {
    stop();
    const contact = e.detail.me.contact || '';
    if (contact.startsWith('client:')) start(e.detail, session);
  });
  document.addEventListener('switchboard:sign-out', stop);
  $('phone-answer').addEventListener('click', answer);
  $('phone-decline').addEventListener('click', decline);
  $('phone-mute').addEventListener('click', toggleMute);
  $('phone-hangup').addEventListener('click', hangUp);
})();
