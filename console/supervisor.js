// switchboard console, the supervisor view and the wallboard: today's figures,
// every queue (waiting callers, service level windows, a last-hour trend, its
// agents by state), the calls in progress and every agent, live from
// GET /v1/events. A supervisor (or the admin) can set an agent available,
// away or signed out and remove a waiting caller, each after a confirmation; a
// wallboard token sees the same figures without a control.
//
// Rendering is keyed: each queue, call and agent keeps its row, and an update
// only rewrites the text that changed and moves the rows whose order changed,
// so a view of 1,000 agents and 200 waiting callers redraws in a few
// milliseconds (each redraw is a `performance.measure` named `sb-render`).
'use strict';
(() => {
  const sb = window.switchboard;
  const { $, api, ago, truth, label } = sb;

  const agents = new Map(); // id -> agent document (state, state_since, …)
  const calls = new Map();  // call_sid -> {from, queue, status, agent, since, arrived}
  let queues = [];
  let totals = null;
  let role = 'admin';
  let current = 0;

  // ---- small DOM helpers -------------------------------------------------------
  // Text is compared with what was last written, not read back from the DOM.
  function put(el, text) {
    if (el._text !== text) { el._text = text; el.textContent = text; }
  }
  function klass(el, name) {
    if (el._class !== name) { el._class = name; el.className = name; }
  }
  function td(row, className, label) {
    const cell = document.createElement('td');
    cell.className = className;
    // The narrow layout shows each cell as a labelled line of a card.
    if (label) cell.dataset.label = label;
    row.appendChild(cell);
    return cell;
  }
  // Puts `items` into `body` in order, one row per key: rows are made once
  // (`make`), refreshed in place (`fill`), moved only when out of place.
  function sync(body, items, key, make, fill) {
    const rows = body._rows || (body._rows = new Map());
    const keep = new Set();
    let at = body.firstElementChild;
    for (const item of items) {
      const k = key(item);
      keep.add(k);
      let row = rows.get(k);
      if (!row) { row = make(item); rows.set(k, row); }
      fill(row, item);
      if (row !== at) body.insertBefore(row, at); else at = at.nextElementSibling;
    }
    for (const [k, row] of rows) {
      if (!keep.has(k)) { row.remove(); rows.delete(k); }
    }
  }
  const pct = (n) => (n === null || n === undefined ? '–' : Math.round(n) + ' %');
  const secsOrDash = (n) => (n === null || n === undefined ? '–' : sb.secs(Math.round(n)));
  const num = (n) => (n === null || n === undefined ? '–' : String(n));

  // ---- targets: colour against the queue's `[queues.targets]` -----------------
  // `higher` is true where more is better (service level).
  function level(value, target, higher) {
    if (value === null || value === undefined || !target) return '';
    const past = (limit) => limit !== null && limit !== undefined && (higher ? value < limit : value > limit);
    if (past(target.bad)) return ' bad';
    if (past(target.warn)) return ' warn';
    return ' ok';
  }

  // ---- sparklines ----------------------------------------------------------------
  const SVG = 'http://www.w3.org/2000/svg';
  function spark(cell, key, points, max, name) {
    const slot = '_svg' + key;
    let svg = cell[slot];
    if (!svg) {
      svg = document.createElementNS(SVG, 'svg');
      svg.setAttribute('viewBox', '0 0 60 16');
      svg.setAttribute('class', 'spark ' + key);
      svg.setAttribute('role', 'img');
      svg.appendChild(document.createElementNS(SVG, 'polyline'));
      cell.appendChild(svg);
      cell[slot] = svg;
    }
    const values = (points || []).map((v) => (v === null || v === undefined ? null : Number(v)));
    const top = Math.max(max || 0, 1, ...values.filter((v) => v !== null));
    const step = values.length > 1 ? 60 / (values.length - 1) : 0;
    const coords = [];
    values.forEach((v, i) => {
      if (v !== null) coords.push((i * step).toFixed(1) + ',' + (15 - (14 * v) / top).toFixed(1));
    });
    const line = coords.join(' ');
    if (svg._line !== line) { svg._line = line; svg.firstChild.setAttribute('points', line); }
    const last = values.filter((v) => v !== null).pop();
    svg.setAttribute('aria-label', name + (last === undefined ? ': no data' : ': now ' + last));
  }

  // ---- today's tiles ---------------------------------------------------------------
  const TILES = [
    ['offered', 'Offered', (t) => num(t.offered)],
    ['answered', 'Answered', (t) => num(t.answered)],
    ['abandoned', 'Abandoned', (t) => num(t.abandoned)],
    ['asa', 'Avg. speed of answer', (t) => secsOrDash(t.asa_secs)],
    ['aht', 'Avg. handle time', (t) => secsOrDash(t.aht_secs)],
    ['sl', 'Service level', (t) => pct(t.service_level_pct)],
  ];
  function renderTiles(box, today) {
    if (!box._tiles) {
      box._tiles = TILES.map(([name, title]) => {
        const tile = document.createElement('div');
        tile.className = 'tile ' + name;
        const value = document.createElement('strong');
        const caption = document.createElement('span');
        caption.textContent = title;
        tile.append(value, caption);
        box.appendChild(tile);
        return value;
      });
    }
    TILES.forEach(([, , show], i) => put(box._tiles[i], today ? show(today) : '–'));
  }

  // ---- queues -------------------------------------------------------------------
  // One cell each for the three service-level windows and for the agents'
  // states: eighteen columns did not fit 1280 px.
  const STATES = ['available', 'reserved', 'on_call', 'wrap_up', 'away', 'offline'];
  const STATE_WORDS = ['free', 'ringing', 'on call', 'wrap-up', 'away', 'offline'];
  const WINDOWS = [['sl-15', 'last_15m', '15 min'], ['sl-60', 'last_60m', '60 min'], ['sl-today', 'today', 'today']];
  // In one wrapper: the narrow layout's cell is a flex line, label and value.
  function parts(cell, names, titles, between) {
    const box = document.createElement('span');
    box.className = 'parts';
    cell.appendChild(box);
    return names.map((name, i) => {
      if (i > 0) box.append(between);
      const span = document.createElement('span');
      span.className = name;
      span.title = titles[i];
      box.appendChild(span);
      return span;
    });
  }
  function makeQueueRow(q) {
    const row = document.createElement('tr');
    row.dataset.queue = q.name;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = q.name;
    row.appendChild(th);
    row._c = {
      waiting: td(row, 'num waiting', 'Waiting'),
      longest: td(row, 'longest', 'Longest wait'),
      trend: td(row, 'trend', 'Last hour: waiting, service level'),
      sl: td(row, 'num service-level', 'Service level: 15 min · 60 min · today'),
      offered: td(row, 'num offered', 'Offered today'),
      answered: td(row, 'num answered', 'Answered today'),
      abandoned: td(row, 'num abandoned', 'Abandoned today'),
      asa: td(row, 'num asa', 'Avg. speed of answer'),
      aht: td(row, 'num aht', 'Avg. handle time'),
    };
    row._c.slWindows = parts(row._c.sl, WINDOWS.map(([n]) => 'sl ' + n),
      WINDOWS.map(([, , label]) => 'Service level, ' + label), ' · ');
    const agents = td(row, 'agents', 'Agents');
    row._states = parts(agents, STATES.map((s) => 'count ' + s), STATE_WORDS, ' ');
    return row;
  }
  // When the caller waiting longest came: not always the head, which may be
  // a caller with a priority who came later.
  function firstCame(q) {
    return q.waiting.reduce((first, w) => Math.min(first, Date.parse(w.since)), Infinity);
  }
  function fillQueueRow(row, q) {
    const c = row._c;
    const t = q.targets || {};
    const came = firstCame(q);
    const longest = q.waiting.length ? Math.max(0, (sb.clock() - came) / 1000) : null;
    put(c.waiting, String(q.waiting_count !== undefined ? q.waiting_count : q.waiting.length));
    klass(c.waiting, 'num waiting' + level(q.waiting.length, t.waiting, false));
    put(c.longest, longest === null ? '–' : ago(came));
    klass(c.longest, 'longest' + level(longest, t.longest_wait_secs, false));
    const trend = q.trend || [];
    spark(c.trend, 'waiting', trend.map((p) => p.waiting), null, 'Waiting callers, last hour');
    spark(c.trend, 'service-level', trend.map((p) => p.service_level_pct), 100, 'Service level %, last hour');
    const sl = q.service_level || {};
    WINDOWS.forEach(([name, key], i) => {
      const value = sl[key] ? sl[key].pct : null;
      put(c.slWindows[i], pct(value));
      klass(c.slWindows[i], 'sl ' + name + level(value, t.service_level_pct, true));
    });
    const today = q.today || {};
    put(c.offered, num(today.offered));
    put(c.answered, num(today.answered));
    put(c.abandoned, num(today.abandoned));
    klass(c.abandoned, 'num abandoned' + level(today.abandoned_pct, t.abandoned_pct, false));
    put(c.asa, secsOrDash(today.asa_secs));
    klass(c.asa, 'num asa' + level(today.asa_secs, t.asa_secs, false));
    put(c.aht, secsOrDash(today.aht_secs));
    STATES.forEach((s, i) => {
      const n = q.agents[s];
      put(row._states[i], n + ' ' + STATE_WORDS[i]);
      klass(row._states[i], 'count ' + s + (n ? '' : ' none'));
    });
  }

  // ---- calls --------------------------------------------------------------------
  // Waiting callers first, by queue and place in line; then the others, oldest first.
  function callOrder(a, b) {
    const wa = a[1].status === 'waiting';
    const wb = b[1].status === 'waiting';
    if (wa !== wb) return wa ? -1 : 1;
    if (wa && a[1].queue !== b[1].queue) return a[1].queue < b[1].queue ? -1 : 1;
    if (wa && a[1].position && b[1].position) return a[1].position - b[1].position;
    return a[1].arrived - b[1].arrived;
  }
  function makeCallRow([sid]) {
    const row = document.createElement('tr');
    row.dataset.callSid = sid;
    const status = document.createElement('span');
    row._c = {
      from: td(row, 'from', 'Caller'),
      queue: td(row, 'queue', 'Queue'),
      status: td(row, 'status', 'Status'),
      position: td(row, 'num position', 'Place in line'),
      estimate: td(row, 'num estimate', 'Estimated wait'),
      waited: td(row, 'waited', 'Since the call came'),
      agent: td(row, 'agent', 'Agent'),
      since: td(row, 'for', 'In this state'),
      act: td(row, 'act control', ''),
    };
    row._c.status.appendChild(status);
    row._c.statusText = status;
    // A callback keeping the caller's place (docs/callbacks.md).
    const badge = document.createElement('span');
    badge.className = 'badge callback';
    badge.textContent = 'callback';
    badge.title = 'The caller hung up and is called back when an agent is free; it keeps its place';
    badge.hidden = true;
    row._c.status.appendChild(badge);
    row._c.badge = badge;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'small';
    remove.textContent = 'Remove…';
    remove.addEventListener('click', () => confirmRemove(sid));
    row._c.act.appendChild(remove);
    row._c.remove = remove;
    return row;
  }
  // What is left of the caller's last estimated wait (the queue document's,
  // counted down since it was read), as the caller heard it: to the minute.
  function estimateText(c) {
    if (c.estimate == null) return '–';
    const left = c.estimate - (sb.clock() - c.estimateRead) / 1000;
    return left < 60 ? '< 1 min' : '≈ ' + Math.round(left / 60) + ' min';
  }
  function fillCallRow(row, [, c]) {
    if (row.dataset.status !== c.status) row.dataset.status = c.status;
    put(row._c.from, c.from || 'withheld');
    put(row._c.queue, c.queue || '');
    put(row._c.statusText, label(c.status));
    klass(row._c.statusText, 'state ' + c.status);
    put(row._c.position, c.status === 'waiting' && c.position ? '#' + c.position : '–');
    put(row._c.estimate, c.status === 'waiting' ? estimateText(c) : '–');
    row._c.badge.hidden = !c.callback;
    put(row._c.waited, ago(c.arrived));
    put(row._c.agent, c.agent || '–');
    put(row._c.since, ago(c.since));
    row._c.remove.hidden = c.status !== 'waiting';
  }

  // ---- agents -------------------------------------------------------------------
  const ORDER = { reserved: 0, on_call: 1, wrap_up: 2, delay: 3, available: 4, away: 5, offline: 6 };
  // Parsed once per value, not once per comparison of a sort.
  function since(a) {
    if (a._sinceText !== a.state_since) { a._sinceText = a.state_since; a._since = Date.parse(a.state_since); }
    return a._since;
  }
  function agentMatches(a, filter) {
    if (filter.queue && !a.queues.includes(filter.queue)) return false;
    if (filter.state && a._now.kind !== filter.state) return false;
    if (filter.text) {
      const hay = (a.id + ' ' + a.name + ' ' + skillsText(a)).toLowerCase();
      if (!hay.includes(filter.text)) return false;
    }
    return true;
  }
  function agentSorter(by) {
    const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    if (by === 'name') return (a, b) => a.name.localeCompare(b.name) || byId(a, b);
    if (by === 'state') return (a, b) => (ORDER[a._now.kind] - ORDER[b._now.kind]) || (since(a) - since(b)) || byId(a, b);
    return (a, b) => since(a) - since(b) || byId(a, b);
  }
  // "es 3, vip": level 1 is the skill alone.
  function skillsText(a) {
    return Object.entries(a.skills || {}).map(([name, level]) => (level > 1 ? name + ' ' + level : name)).join(', ');
  }
  function makeAgentRow(a) {
    const row = document.createElement('tr');
    row.dataset.agent = a.id;
    const th = document.createElement('th');
    th.scope = 'row';
    row.appendChild(th);
    const stateCell = td(row, 'state-cell', 'State');
    const state = document.createElement('span');
    stateCell.appendChild(state);
    row._c = {
      name: th,
      state,
      since: td(row, 'for', 'For'),
      missed: td(row, 'num missed', 'Missed in a row'),
      queues: td(row, 'queues', 'Queues'),
      skills: td(row, 'skills', 'Skills'),
      act: td(row, 'act control', ''),
    };
    const change = document.createElement('button');
    change.type = 'button';
    change.className = 'small';
    change.textContent = 'Change…';
    change.setAttribute('aria-label', 'Change the state of ' + a.name);
    change.addEventListener('click', () => confirmAgent(a.id));
    row._c.act.appendChild(change);
    return row;
  }
  function fillAgentRow(row, a) {
    const now = a._now;
    put(row._c.name, a.name + ' (' + a.id + ')');
    put(row._c.state, now.text);
    klass(row._c.state, 'state ' + now.kind);
    if (row.dataset.state !== now.kind) row.dataset.state = now.kind;
    put(row._c.since, ago(since(a)));
    put(row._c.missed, a.missed_in_row ? String(a.missed_in_row) : '');
    put(row._c.queues, a.queues.join(', '));
    put(row._c.skills, skillsText(a));
  }

  // ---- the whole view, once a frame at most ------------------------------------------
  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }
  function filterNow() {
    return {
      text: $('agent-search').value.trim().toLowerCase(),
      state: $('agent-state-filter').value,
      queue: $('agent-queue-filter').value,
    };
  }
  const PAGE = 100;
  let agentPage = 0;
  let renders = 0;
  function render() {
    frame = 0;
    const mark = 'sb-render-' + (++renders % 1000);
    performance.mark(mark);
    renderTiles($('totals'), totals);
    sync($('queues').tBodies[0], queues, (q) => q.name, makeQueueRow, fillQueueRow);
    const list = [...calls.entries()].sort(callOrder);
    sync($('calls').tBodies[0], list, (e) => e[0], makeCallRow, fillCallRow);
    $('no-calls').hidden = list.length > 0;
    const filter = filterNow();
    for (const a of agents.values()) a._now = truth(a);
    const shown = [...agents.values()].filter((a) => agentMatches(a, filter)).sort(agentSorter($('agent-sort').value));
    // A page of agents at a time: a table of every agent of a large floor
    // costs the browser a layout of thousands of rows on each tick.
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    agentPage = Math.min(agentPage, pages - 1);
    const first = agentPage * PAGE;
    sync($('agents').tBodies[0], shown.slice(first, first + PAGE), (a) => a.id, makeAgentRow, fillAgentRow);
    put($('agent-count'), shown.length
      ? (first + 1) + '–' + Math.min(first + PAGE, shown.length) + ' of ' + shown.length + (shown.length === agents.size ? '' : ' (of ' + agents.size + ')') + ' agents'
      : 'No agent matches (of ' + agents.size + ')');
    $('agents-prev').disabled = agentPage === 0;
    $('agents-next').disabled = agentPage >= pages - 1;
    $('agent-pager').hidden = pages === 1;
    if (wallboard) renderWallboard();
    // `sb-render`: this script's work; `sb-frame`: until the next frame is
    // laid out and painted with it (style, layout and paint included).
    performance.measure('sb-render', mark);
    requestAnimationFrame(() => setTimeout(() => {
      performance.measure('sb-frame', mark);
      performance.clearMarks(mark);
    }, 0));
    // Keep the measures bounded: a console stays open all day.
    if (performance.getEntriesByName('sb-render').length > 500) {
      performance.clearMeasures('sb-render');
      performance.clearMeasures('sb-frame');
    }
  }

  // ---- wallboard: large type, no controls, one queue at a time ------------------------
  let wallboard = false;
  let rotation = null;
  let shownQueue = 0;
  function renderWallboard() {
    const q = queues.length ? queues[shownQueue % queues.length] : null;
    put($('wall-queue'), q ? q.name : '');
    renderTiles($('wall-tiles'), q ? q.today || null : null);
    put($('wall-waiting'), q ? String(q.waiting.length) : '–');
    put($('wall-longest'), q && q.waiting.length ? ago(firstCame(q)) : '–');
    put($('wall-available'), q ? String(q.agents.available) : '–');
  }
  function setWallboard(on) {
    wallboard = on;
    document.body.classList.toggle('wallboard', on);
    $('wallboard-toggle').setAttribute('aria-pressed', String(on));
    $('wall').hidden = !on;
    clearInterval(rotation);
    if (on) {
      rotation = setInterval(() => { shownQueue++; schedule(); }, 10000);
    }
    schedule();
  }

  // ---- actions, each confirmed ------------------------------------------------------
  function ask(question, choices) {
    const dialog = $('confirm');
    $('confirm-question').textContent = question;
    $('confirm-error').textContent = '';
    const box = $('confirm-choices');
    box.replaceChildren();
    // A choice answers `true` when it asked a next question in this dialog.
    for (const [text, run] of choices) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = text;
      button.addEventListener('click', async () => {
        try {
          if (!(await run())) dialog.close();
        } catch (e) {
          if (e instanceof sb.AuthError) { dialog.close(); sb.signOut('Your token was refused: sign in again.'); return; }
          $('confirm-error').textContent = e.status === 409
            ? 'Not now: ' + e.message
            : e.status === 403 ? 'Your token may not do this.' : 'It failed: ' + e.message;
        }
      });
      box.appendChild(button);
    }
    if (!dialog.open) dialog.showModal();
    box.firstElementChild.focus();
    return true;
  }
  function confirmAgent(id) {
    const a = agents.get(id);
    if (!a) return;
    const who = a.name + ' (' + a.id + ')';
    const set = (state, words) => [words, () => ask(words + ': ' + who + '?', [
      ['Yes, ' + words.toLowerCase(), async () => {
        await api('PUT', '/agents/' + encodeURIComponent(id) + '/state', { state });
      }],
      ['Cancel', async () => {}],
    ])];
    ask('Change the state of ' + who + ', now ' + truth(a).text + ':', [
      set('available', 'Set available'),
      set('away', 'Set away'),
      set('offline', 'Sign out'),
      ['Cancel', async () => {}],
    ]);
  }
  function confirmRemove(sid) {
    const c = calls.get(sid);
    if (!c) return;
    ask('Remove ' + (c.from || 'the withheld caller') + ' from the line of ' + c.queue + '? The call goes on to the queue\'s fallback.', [
      ['Yes, remove', async () => {
        await api('DELETE', '/queues/' + encodeURIComponent(c.queue) + '/waiting/' + encodeURIComponent(sid));
      }],
      ['Cancel', async () => {}],
    ]);
  }

  // ---- loading and following -------------------------------------------------------
  async function loadQueues() {
    const doc = await api('GET', '/queues');
    queues = doc.queues;
    totals = doc.totals ? doc.totals.today : null;
    const seen = new Set();
    for (const q of queues) {
      for (const w of q.waiting) {
        seen.add(w.call_sid);
        const known = calls.get(w.call_sid);
        const since = Date.parse(w.since);
        if (!known || known.status === 'waiting' || known.status === 'routing') {
          calls.set(w.call_sid, {
            from: w.from, queue: q.name, status: 'waiting', agent: null,
            since: known && known.status === 'waiting' ? known.since : since,
            arrived: Math.min(since, known ? known.arrived : since), position: w.position,
            estimate: w.estimated_wait_secs, estimateRead: sb.clock(), callback: w.callback,
          });
        }
      }
    }
    // Callers that left the line meanwhile (a lost event) are not shown as waiting.
    for (const [sid, c] of calls) {
      if (c.status === 'waiting' && !seen.has(sid)) calls.delete(sid);
    }
    const select = $('agent-queue-filter');
    if (select.options.length !== queues.length + 1) {
      select.replaceChildren(new Option('All queues', ''), ...queues.map((q) => new Option(q.name, q.name)));
    }
    schedule();
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
    schedule();
  }

  // Everything afresh: at sign-in, and after a lost connection.
  async function loadAll() {
    await loadAgents();
    calls.clear();
    for (const a of agents.values()) {
      if (a.call_sid && (a.state === 'reserved' || a.state === 'on_call')) {
        const since = Date.parse(a.state_since);
        calls.set(a.call_sid, { from: null, queue: null, status: a.state === 'on_call' ? 'talking' : 'ringing', agent: a.id, since, arrived: since });
        api('GET', '/calls/' + a.call_sid).then((h) => {
          const c = calls.get(a.call_sid);
          const first = h.events.find((e) => e.data.queue);
          if (c && first) {
            c.from = first.data.from || null;
            c.queue = first.data.queue;
            c.arrived = Math.min(c.arrived, first.data.at || c.arrived);
            schedule();
          }
        }).catch(() => {});
      }
    }
    await loadQueues();
  }

  function onEvent(kind, d) {
    if (kind === 'agent_state') {
      if (d.state === 'deleted') agents.delete(d.agent);
      else {
        const a = agents.get(d.agent);
        // Unknown, or its name or queues changed (same state): read it again.
        if (!a || d.state === d.previous) reloadAgents();
        if (a && d.state !== d.previous) {
          a.state = d.state;
          a.state_since = new Date(d.at).toISOString();
          a.available_at = d.available_at ? new Date(d.available_at).toISOString() : null;
          if (d.missed_in_row !== undefined) a.missed_in_row = d.missed_in_row;
          a.away_reason = d.reason || null;
          a.call_sid = d.call_sid || null;
        }
      }
      // An agent that stopped ringing for a call (no answer, busy): the call
      // looks for its next agent.
      if (d.state !== 'reserved') {
        for (const c of calls.values()) {
          if (c.agent === d.agent && c.status === 'ringing') { c.status = 'routing'; c.agent = null; c.since = d.at; }
        }
      }
    } else if (d.call_sid) {
      const c = calls.get(d.call_sid) || { from: d.from || null, queue: d.queue, since: d.at, arrived: d.since || d.at };
      c.from = d.from || c.from;
      c.queue = d.queue || c.queue;
      if (kind === 'call_waiting') {
        // `since` is when the call arrived: a caller put back in line after a
        // missed offer keeps its place and its whole wait.
        if (c.status !== 'waiting') c.since = d.at;
        c.status = 'waiting';
        c.agent = null;
        if (d.since) c.arrived = Math.min(c.arrived, d.since);
      }
      if (kind === 'callback_requested') c.callback = true;
      if (kind === 'call_routed') { c.status = 'ringing'; c.agent = d.agent; c.since = d.at; c.position = null; }
      if (kind === 'call_connected') { c.status = 'talking'; c.agent = d.agent || c.agent; c.since = d.at; }
      if (kind === 'call_ended' || kind === 'fallback' || kind === 'callback_ended' || kind === 'callback_connected') {
        c.status = 'ended';
        c.since = d.at;
        setTimeout(() => { if (calls.get(d.call_sid) === c && c.status === 'ended') { calls.delete(d.call_sid); schedule(); } }, 5000);
      }
      calls.set(d.call_sid, c);
    }
    schedule();
    refreshQueues();
  }
  const refreshQueues = sb.debounce(() => loadQueues().catch(() => {}), 250);
  const reloadAgents = sb.debounce(() => loadAgents().catch(() => {}), 250);

  sb.views.supervisor = {
    start(mine, given) {
      current = mine;
      role = given;
      document.body.dataset.role = role;
      $('supervisor').hidden = false;
      setWallboard(role === 'wallboard');
      sb.follow(mine, loadAll, onEvent);
      // The queue figures (today, the windows, the trend) move with time too.
      return () => {
        if (!sb.isCurrent(current)) return;
        schedule();
        if (Date.now() % 15000 < 1000) refreshQueues();
      };
    },
    stop() {
      agents.clear();
      calls.clear();
      queues = [];
      totals = null;
      setWallboard(false);
      $('supervisor').hidden = true;
      delete document.body.dataset.role;
    },
  };

  for (const id of ['agent-search', 'agent-state-filter', 'agent-queue-filter', 'agent-sort']) {
    $(id).addEventListener('input', () => { agentPage = 0; schedule(); });
  }
  $('agents-prev').addEventListener('click', () => { agentPage = Math.max(0, agentPage - 1); schedule(); });
  $('agents-next').addEventListener('click', () => { agentPage++; schedule(); });
  $('wallboard-toggle').addEventListener('click', () => setWallboard(!wallboard));
})();
