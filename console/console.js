// switchboard console: plain JavaScript, no dependencies, nothing fetched but
// this server's own /v1 API. The token lives in sessionStorage (this tab
// only) and travels only in the Authorization header. Live updates come from
// GET /v1/events, read with fetch() (EventSource cannot send a header),
// resumed with Last-Event-ID after a lost connection; a `gap` notice (the
// resume went further back than the server keeps for it) reloads the
// present, and a `shutdown` notice reconnects after its `retry:` time.
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

  // ---- durations and text -------------------------------------------------
  function ago(ms) {
    const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  const label = (state) => ({
    available: 'available', reserved: 'ringing', on_call: 'on a call', wrap_up: 'in wrap-up',
    away: 'away', offline: 'offline', waiting: 'waiting', ringing: 'ringing', talking: 'talking',
    ended: 'ended', routing: 'finding an agent',
  })[state] || state;
  function cell(row, text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }
  function badge(row, state) {
    const td = document.createElement('td');
    const span = document.createElement('span');
    span.className = 'state ' + state;
    span.textContent = label(state);
    td.appendChild(span);
    row.appendChild(td);
  }

  // ---- connection indicator ------------------------------------------------
  let backTimer = null;
  function connection(kind, text) {
    const p = $('connection');
    p.hidden = false;
    p.className = 'connection ' + kind;
    p.textContent = text;
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
    state.textContent = label(me.state);
    state.className = 'state ' + me.state;
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

  async function setMyState(state) {
    $('agent-error').textContent = '';
    try {
      await api('PUT', '/me/state', { state });
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

  // ---- supervisor view -------------------------------------------------------
  const agents = new Map(); // id -> agent document (state, state_since, …)
  const calls = new Map();  // call_sid -> {from, queue, status, agent, since}
  let queues = [];

  function renderQueues() {
    const body = $('queues').tBodies[0];
    body.replaceChildren();
    for (const q of queues) {
      const row = document.createElement('tr');
      row.dataset.queue = q.name;
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = q.name;
      row.appendChild(th);
      // What a supervisor looks for first comes first: on a phone the
      // table scrolls sideways.
      cell(row, String(q.waiting.length), 'num waiting');
      cell(row, q.waiting.length ? ago(Date.parse(q.waiting[0].since)) : '–', 'longest');
      const sl = q.service_level;
      cell(row, sl && sl.answered ? Math.round((100 * sl.within) / sl.answered) + ' % in ' + sl.target_secs + ' s' : '–', 'service-level');
      for (const s of ['available', 'reserved', 'on_call', 'wrap_up', 'away', 'offline']) {
        cell(row, String(q.agents[s]), 'num ' + s);
      }
      body.appendChild(row);
    }
  }

  function renderCalls() {
    const body = $('calls').tBodies[0];
    body.replaceChildren();
    const list = [...calls.entries()].sort((a, b) => a[1].since - b[1].since);
    for (const [sid, c] of list) {
      const row = document.createElement('tr');
      row.dataset.callSid = sid;
      row.dataset.status = c.status;
      cell(row, c.from || 'withheld', 'from');
      cell(row, c.queue || '');
      badge(row, c.status);
      cell(row, c.agent || '–', 'agent');
      cell(row, ago(c.since), 'for');
      body.appendChild(row);
    }
    $('no-calls').hidden = list.length > 0;
  }

  function renderAgents() {
    const body = $('agents').tBodies[0];
    body.replaceChildren();
    const list = [...agents.values()].sort((a, b) => a.id.localeCompare(b.id));
    for (const a of list) {
      const row = document.createElement('tr');
      row.dataset.agent = a.id;
      cell(row, a.name + ' (' + a.id + ')');
      badge(row, a.state);
      cell(row, ago(Date.parse(a.state_since)), 'for');
      cell(row, a.queues.join(', '));
      body.appendChild(row);
    }
  }

  async function loadQueues() {
    queues = (await api('GET', '/queues')).queues;
    for (const q of queues) {
      for (const w of q.waiting) {
        const known = calls.get(w.call_sid);
        if (!known || known.status === 'waiting') {
          calls.set(w.call_sid, { from: w.from, queue: q.name, status: 'waiting', agent: null, since: Date.parse(w.since) });
        }
      }
    }
    renderQueues();
    renderCalls();
  }

  async function loadAgents() {
    let cursor = null;
    const found = new Map();
    for (let pages = 0; pages < 20; pages++) {
      const page = await api('GET', '/agents?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      for (const a of page.agents) found.set(a.id, a);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    agents.clear();
    for (const [id, a] of found) agents.set(id, a);
    renderAgents();
  }

  // Everything afresh: at sign-in, and after a lost connection.
  async function loadAll() {
    await loadAgents();
    calls.clear();
    for (const a of agents.values()) {
      if (a.call_sid && (a.state === 'reserved' || a.state === 'on_call')) {
        calls.set(a.call_sid, { from: null, queue: null, status: a.state === 'on_call' ? 'talking' : 'ringing', agent: a.id, since: Date.parse(a.state_since) });
        api('GET', '/calls/' + a.call_sid).then((h) => {
          const c = calls.get(a.call_sid);
          const first = h.events.find((e) => e.data.queue);
          if (c && first) { c.from = first.data.from || null; c.queue = first.data.queue; renderCalls(); }
        }).catch(() => {});
      }
    }
    renderAgents();
    await loadQueues();
  }

  function onSupervisorEvent(kind, d) {
    if (kind === 'agent_state') {
      if (d.state === 'deleted') agents.delete(d.agent);
      else {
        const a = agents.get(d.agent);
        // Unknown, or its name or queues changed (same state): read it again.
        if (!a || d.state === d.previous) reloadAgents();
        if (a && d.state !== d.previous) { a.state = d.state; a.state_since = new Date(d.at).toISOString(); }
      }
      // An agent that stopped ringing for a call (no answer, busy): the call
      // looks for its next agent.
      if (d.state !== 'reserved') {
        for (const c of calls.values()) {
          if (c.agent === d.agent && c.status === 'ringing') { c.status = 'routing'; c.agent = null; }
        }
        renderCalls();
      }
      renderAgents();
    } else if (d.call_sid) {
      const c = calls.get(d.call_sid) || { from: d.from || null, queue: d.queue, since: d.at };
      c.from = d.from || c.from;
      c.queue = d.queue || c.queue;
      if (kind === 'call_waiting') { c.status = 'waiting'; c.agent = null; c.since = d.since || d.at; }
      if (kind === 'call_routed') { c.status = 'ringing'; c.agent = d.agent; c.since = d.at; }
      if (kind === 'call_connected') { c.status = 'talking'; c.agent = d.agent || c.agent; c.since = d.at; }
      if (kind === 'call_ended' || kind === 'fallback') {
        c.status = 'ended';
        setTimeout(() => { if (calls.get(d.call_sid) === c && c.status === 'ended') { calls.delete(d.call_sid); renderCalls(); } }, 5000);
      }
      calls.set(d.call_sid, c);
      renderCalls();
    }
    refreshQueues();
  }
  const refreshQueues = debounce(() => loadQueues().catch(() => {}), 50);
  const reloadAgents = debounce(() => loadAgents().catch(() => {}), 100);

  function startSupervisor(mine) {
    $('supervisor').hidden = false;
    follow(mine, loadAll, onSupervisorEvent);
  }

  // ---- sign in and out -------------------------------------------------------
  let ticker = null;

  async function signIn(given) {
    token = given.trim();
    $('sign-in-error').textContent = '';
    const mine = ++session;
    try {
      if (token.startsWith('sbat_')) {
        me = await api('GET', '/me');
        renderMe();
        startAgent(mine);
        // softphone.js starts for a `client:` contact; alerts.js offers notifications.
        document.dispatchEvent(new CustomEvent('switchboard:agent', {
          detail: { me, voiceToken: () => api('POST', '/me/voice-token') },
        }));
      } else {
        await api('GET', '/queues');
        startSupervisor(mine);
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
    ticker = setInterval(() => {
      if (!$('agent').hidden) renderMe();
      if (!$('supervisor').hidden) { renderCalls(); renderAgents(); renderQueues(); }
    }, 1000);
    $('main').focus();
  }

  function signOut(message) {
    session++;
    document.dispatchEvent(new Event('switchboard:sign-out'));
    if (aborter) aborter.abort();
    clearInterval(heartbeat);
    clearInterval(ticker);
    token = null;
    me = null;
    agents.clear();
    calls.clear();
    sessionStorage.removeItem(KEY);
    $('agent').hidden = true;
    $('supervisor').hidden = true;
    $('sign-out').hidden = true;
    $('connection').hidden = true;
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
  $('go-away').addEventListener('click', () => setMyState('away'));

  const kept = sessionStorage.getItem(KEY);
  if (kept) signIn(kept);
})();
