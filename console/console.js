// switchboard console: plain JavaScript, no dependencies, nothing fetched but
// this server's own /v1 API. The token lives in sessionStorage (this tab
// only) and travels only in the Authorization header. Live updates come from
// GET /v1/events, read with fetch() (EventSource cannot send a header),
// resumed with Last-Event-ID after a lost connection; a `gap` notice (the
// resume went further back than the server keeps for it) reloads the
// present, and a `shutdown` notice reconnects after its `retry:` time.
//
// This file is the core (API calls, the event stream, sign-in, the agent's
// own view); supervisor.js adds the supervisor view and the wallboard, and
// agentwork.js the agent's away reasons, wrap-ups and last calls, through
// `window.switchboard`.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = 'switchboard-token';
  let token = null;
  let session = 0; // bumped at sign-out: loops of an old session stop
  let aborter = null;

  class AuthError extends Error {}
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch('/v1' + path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) throw new AuthError('token refused');
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, message);
    }
    return response.status === 204 ? null : response.json();
  }

  // ---- the page's clock and staleness ---------------------------------------
  // While the event stream is lost the page stops its clock at the moment it
  // lost it: durations do not tick on as if live, and `stale` says since when.
  let staleSince = null;
  // The signed-in view's render of the clock (each second, and once more the
  // moment the stream is lost, so no tick after it moves a figure).
  let renderClock = null;
  const clock = () => (staleSince === null ? Date.now() : staleSince);
  function markStale(lost) {
    const wasLive = staleSince === null;
    if (lost && staleSince === null) staleSince = Date.now();
    if (!lost) staleSince = null;
    document.body.classList.toggle('stale', staleSince !== null);
    const note = $('stale');
    note.hidden = staleSince === null;
    if (staleSince !== null) {
      note.textContent = 'Not live: figures as of ' + new Date(staleSince).toLocaleTimeString() + '.';
      if (wasLive && renderClock) renderClock();
    }
  }

  // ---- durations and text -------------------------------------------------
  function secs(s) {
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  const ago = (ms) => secs(Math.max(0, Math.floor((clock() - ms) / 1000)));
  const until = (ms) => secs(Math.max(0, Math.ceil((ms - clock()) / 1000)));
  // What an agent really is now: an `available` agent in its no-answer delay
  // is not offered calls, and reads so, not as a green "available".
  function truth(a) {
    const at = a.available_at ? Date.parse(a.available_at) : NaN;
    const later = Number.isFinite(at) && at > clock();
    if (a.state === 'available' && later) {
      return { kind: 'delay', text: (a.missed_in_row > 0 ? 'missed — free in ' : 'free in ') + until(at) };
    }
    if (a.state === 'wrap_up') return { kind: 'wrap_up', text: later ? 'wrap-up — ' + until(at) : 'in wrap-up' };
    if (a.state === 'away' && a.away_reason) return { kind: 'away', text: 'away — ' + a.away_reason };
    return { kind: a.state, text: label(a.state) };
  }
  const label = (state) => ({
    available: 'available', reserved: 'ringing', on_call: 'on a call', wrap_up: 'in wrap-up',
    away: 'away', offline: 'offline', waiting: 'waiting', ringing: 'ringing', talking: 'talking',
    ended: 'ended', routing: 'finding an agent',
  })[state] || state;

  // ---- connection indicator ------------------------------------------------
  let backTimer = null;
  function connection(kind, text) {
    const p = $('connection');
    p.hidden = false;
    p.className = 'connection ' + kind;
    p.textContent = text;
    markStale(kind === 'lost');
    clearTimeout(backTimer);
    if (kind === 'live' && text !== 'Live') {
      backTimer = setTimeout(() => { p.textContent = 'Live'; }, 4000);
    }
  }

  // ---- the event stream ------------------------------------------------------
  async function follow(mine, onOpen, onEvent) {
    let lastId = null;
    let lost = false;
    let delay = 1000;
    while (mine === session) {
      let restartIn = null; // ms, from a shutdown notice
      let busy = false; // 429: this token's agent has its most streams open
      try {
        const headers = { Authorization: 'Bearer ' + token };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const ctl = new AbortController();
        aborter = ctl;
        const response = await fetch('/v1/events', { headers, cache: 'no-store', signal: ctl.signal });
        if (response.status === 401) { signOut('Your token was refused (expired or revoked?): sign in again.'); return; }
        // An id this server never gave (another Redis?): start afresh.
        if (response.status === 400) lastId = null;
        busy = response.status === 429;
        if (!response.ok) throw new Error('events: ' + response.status);
        try {
          await onOpen();
        } catch (e) {
          ctl.abort();
          throw e;
        }
        connection('live', lost ? 'Connected again' : 'Live');
        lost = false;
        delay = 1000;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          // The server writes at least every 15 s; 40 s of silence is a lost link.
          const silence = setTimeout(() => ctl.abort(), 40000);
          let chunk;
          try {
            chunk = await reader.read();
          } finally {
            clearTimeout(silence);
          }
          const { value, done } = chunk;
          if (done || mine !== session) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let id = null; let kind = null; let data = null; let retry = null;
            for (const line of block.split('\n')) {
              if (line.startsWith('id:')) id = line.slice(3).trim();
              else if (line.startsWith('event:')) kind = line.slice(6).trim();
              else if (line.startsWith('data:')) data = line.slice(5).trim();
              else if (line.startsWith('retry:')) retry = parseInt(line.slice(6), 10);
            }
            // The server is stopping; the stream ends next. No id: the
            // resume starts after the last event.
            if (kind === 'shutdown') restartIn = Number.isFinite(retry) ? retry : 1000;
            if (id && kind && data) {
              lastId = id;
              // Events were left out: what the page shows is reloaded.
              if (kind === 'gap') { onOpen().catch(() => {}); continue; }
              try { onEvent(kind, JSON.parse(data)); } catch (e) { console.error(e); }
            }
          }
        }
      } catch (e) {
        if (e instanceof AuthError) { signOut('Your token was refused: sign in again.'); return; }
      }
      if (mine !== session) return;
      lost = true;
      if (restartIn !== null) {
        connection('lost', 'Server restarting — reconnecting…');
        await new Promise((r) => setTimeout(r, restartIn));
        continue;
      }
      connection('lost', busy ? 'Too many consoles open for you — retrying…' : 'Connection lost — reconnecting…');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
  window.addEventListener('offline', () => { if (aborter) aborter.abort(); });

  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // ---- agent view ------------------------------------------------------------
  let me = null;
  let heartbeat = null;

  function renderMe() {
    if (!me) return;
    $('agent-name').textContent = me.name + ' (' + me.id + ')';
    const state = $('agent-state');
    const now = truth(me);
    state.textContent = now.text;
    state.className = 'state ' + now.kind;
    $('agent-since').textContent = 'for ' + ago(Date.parse(me.state_since));
    const busy = me.state === 'reserved' || me.state === 'on_call';
    const available = $('go-available');
    const away = $('go-away');
    available.setAttribute('aria-pressed', String(me.state === 'available' || me.state === 'wrap_up'));
    away.setAttribute('aria-pressed', String(me.state === 'away'));
    available.disabled = busy;
    away.disabled = busy;
    const call = me.call;
    $('call').hidden = !call;
    $('no-call').hidden = !!call;
    if (call) {
      $('call-from').textContent = call.from || 'withheld number';
      $('call-queue').textContent = call.queue;
      $('call-since-label').textContent = me.state === 'on_call' ? 'Talking for' : 'Ringing for';
      $('call-since').textContent = ago(Date.parse(call.since));
    }
    // alerts.js rings while reserved and says each change.
    document.dispatchEvent(new CustomEvent('switchboard:me', { detail: me }));
  }

  async function refreshMe() {
    me = await api('GET', '/me');
    renderMe();
  }

  async function setMyState(state, reason) {
    $('agent-error').textContent = '';
    try {
      await api('PUT', '/me/state', reason ? { state, reason } : { state });
      await refreshMe();
    } catch (e) {
      if (e instanceof AuthError) { signOut('Your token was refused: sign in again.'); return; }
      $('agent-error').textContent = e.status === 409 ? 'You are on a call: your state changes when it ends.' : 'Could not change your state: ' + e.message;
    }
  }

  function startAgent(mine) {
    $('agent').hidden = false;
    const every = Math.max(5, (me.heartbeat_secs || 30) / 3) * 1000;
    heartbeat = setInterval(() => {
      api('POST', '/me/heartbeat').catch((e) => {
        if (e instanceof AuthError) signOut('Your token was refused: sign in again.');
      });
    }, every);
    api('POST', '/me/heartbeat').catch(() => {});
    const refresh = debounce(() => refreshMe().catch(() => {}), 20);
    follow(mine, refreshMe, () => refresh());
  }

  // ---- sign in and out -------------------------------------------------------
  let ticker = null;
  // What the page shows besides the agent's own view: supervisor.js sets it.
  const views = {};
  const roleOf = (t) => (t.startsWith('sbwt_') ? 'wallboard' : t.startsWith('sbst_') ? 'supervisor' : 'admin');

  async function signIn(given) {
    token = given.trim();
    $('sign-in-error').textContent = '';
    const mine = ++session;
    let onTick = null;
    try {
      if (token.startsWith('sbat_')) {
        me = await api('GET', '/me');
        renderMe();
        startAgent(mine);
        // softphone.js starts for a `client:` contact; alerts.js offers notifications.
        document.dispatchEvent(new CustomEvent('switchboard:agent', {
          detail: { me, voiceToken: () => api('POST', '/me/voice-token') },
        }));
        onTick = renderMe;
      } else {
        await api('GET', '/queues');
        onTick = views.supervisor.start(mine, roleOf(token));
      }
    } catch (e) {
      token = null;
      sessionStorage.removeItem(KEY);
      $('sign-in-error').textContent = e instanceof AuthError ? 'That token was refused.' : 'Cannot reach switchboard: ' + e.message;
      $('token').focus();
      return;
    }
    sessionStorage.setItem(KEY, token);
    $('sign-in').hidden = true;
    $('sign-out').hidden = false;
    ticker = setInterval(onTick, 1000);
    renderClock = onTick;
    $('main').focus();
  }

  function signOut(message) {
    session++;
    document.dispatchEvent(new Event('switchboard:sign-out'));
    if (aborter) aborter.abort();
    clearInterval(heartbeat);
    clearInterval(ticker);
    renderClock = null;
    token = null;
    me = null;
    if (views.supervisor) views.supervisor.stop();
    sessionStorage.removeItem(KEY);
    $('agent').hidden = true;
    $('sign-out').hidden = true;
    $('connection').hidden = true;
    markStale(false);
    $('sign-in').hidden = false;
    $('token').value = '';
    $('sign-in-error').textContent = message || '';
    $('token').focus();
  }

  $('sign-in-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('token').value);
  });
  // Disabled in the page, so that without this script the form cannot submit.
  $('sign-in-button').disabled = false;
  $('sign-out').addEventListener('click', () => signOut(''));
  $('go-available').addEventListener('click', () => setMyState('available'));
  // agentwork.js fills the reasons in (none configured: the picker is hidden).
  $('go-away').addEventListener('click', () => setMyState('away', $('away-reason').value));

  window.switchboard = {
    $, api, follow, debounce, clock, ago, until, secs, truth, label, views,
    AuthError, ApiError, signOut, setMyState, isCurrent: (mine) => mine === session,
  };
  // After every deferred script (supervisor.js) has run.
  document.addEventListener('DOMContentLoaded', () => {
    const kept = sessionStorage.getItem(KEY);
    if (kept) signIn(kept);
  });
})();
