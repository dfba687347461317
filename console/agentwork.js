// An agent's work around its calls (docs/console.md, Agents): the away reason
// given with Away, the wrap-up (a disposition code and a note) of the call it
// holds or of one of its last calls, and those last 20 calls. Everything here
// is built with textContent: a note is somebody's free text.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const sb = () => window.switchboard;
  let heldSid = null; // the call whose wrap-up form the call card shows
  let asked = 0; // the newest load of the last calls; older answers are dropped

  function el(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    for (const child of children || []) node.append(child);
    return node;
  }
  const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

  function failed(e, status) {
    if (e instanceof sb().AuthError) { sb().signOut('Your token was refused: sign in again.'); return; }
    status.className = 'wrap-up-status error';
    status.textContent = 'Not saved: ' + e.message;
  }

  // A disposition code and a note for call `sid`; `given` fills it in.
  function wrapUpForm(sid, codes, given, onSaved) {
    const code = el('select', { name: 'code', required: true }, [el('option', { value: '', textContent: 'Choose…' })]);
    for (const c of codes) code.append(el('option', { value: c, textContent: c }));
    if (given) code.value = given.code;
    const note = el('input', { name: 'note', type: 'text', maxLength: 500, autocomplete: 'off', value: given ? given.note : '' });
    const status = el('p', { className: 'wrap-up-status' });
    status.setAttribute('role', 'status');
    const form = el('form', { className: 'wrap-up' }, [
      el('label', {}, ['Disposition ', code]),
      el('label', {}, ['Note ', note]),
      el('button', { type: 'submit', textContent: given ? 'Change wrap-up' : 'Save wrap-up' }),
      status,
    ]);
    form.dataset.callSid = sid;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      status.className = 'wrap-up-status';
      status.textContent = 'Saving…';
      try {
        // A note is one line: pasted line breaks become spaces.
        const body = { code: code.value, note: note.value.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim() };
        const saved = await sb().api('PUT', '/me/calls/' + sid + '/wrap-up', body);
        status.textContent = 'Saved: ' + saved.code + (saved.note ? ' — ' + saved.note : '');
        onSaved(saved);
      } catch (err) { failed(err, status); }
    });
    return form;
  }

  function callItem(call) {
    const talk = call.answered ? sb().secs(call.talk_secs) : 'not answered';
    const given = call.wrap_up;
    const item = el('li', {}, [
      el('div', { className: 'call-line' }, [
        el('time', { dateTime: call.started, textContent: time(call.started) }),
        el('span', { className: 'from', textContent: call.from || 'withheld number' }),
        el('span', { className: 'muted', textContent: call.queue + ' · ' + talk }),
      ]),
      el('p', {
        className: given ? 'given' : 'given muted',
        textContent: given ? given.code + (given.note ? ' — ' + given.note : '') : 'No wrap-up',
      }),
    ]);
    item.dataset.callSid = call.call_sid;
    const open = Date.parse(call.wrap_up_until) > Date.now() && call.dispositions.length > 0;
    if (open) {
      const button = el('button', { type: 'button', className: 'small', textContent: given ? 'Change' : 'Wrap up' });
      button.setAttribute('aria-expanded', 'false');
      button.addEventListener('click', () => {
        const shown = item.querySelector('form');
        if (shown) { shown.remove(); button.setAttribute('aria-expanded', 'false'); return; }
        // The list is drawn again with the new wrap-up once "Saved" was seen.
        item.append(wrapUpForm(call.call_sid, call.dispositions, given, () => setTimeout(loadCalls, 600)));
        button.setAttribute('aria-expanded', 'true');
        item.querySelector('select').focus();
      });
      item.querySelector('.call-line').append(button);
    }
    return item;
  }

  async function loadCalls() {
    const mine = ++asked;
    let answer;
    try {
      answer = await sb().api('GET', '/me/calls');
    } catch (e) {
      if (e instanceof sb().AuthError) sb().signOut('Your token was refused: sign in again.');
      return;
    }
    if (mine !== asked) return;
    const list = $('my-calls-list');
    list.replaceChildren(...answer.calls.map(callItem));
    $('my-calls-empty').hidden = answer.calls.length > 0;
  }

  // The reasons Away may be given with; none configured: no picker.
  function showReasons(reasons) {
    const select = $('away-reason');
    select.replaceChildren(el('option', { value: '', textContent: 'no reason' }),
      ...reasons.map((r) => el('option', { value: r, textContent: r })));
    $('away-reason-field').hidden = reasons.length === 0;
  }
  $('away-reason').addEventListener('change', () => {
    // Away already: the new reason is said at once.
    if ($('go-away').getAttribute('aria-pressed') === 'true') sb().setMyState('away', $('away-reason').value);
  });

  // The call card's wrap-up: while the agent talks, for the call it holds.
  function followCall(me) {
    const call = me.state === 'on_call' ? me.call : null;
    const sid = call ? call.call_sid : null;
    if (sid === heldSid) return;
    const ended = heldSid !== null;
    heldSid = sid;
    const box = $('call-wrap-up');
    box.replaceChildren();
    if (call && call.dispositions.length > 0) box.append(wrapUpForm(sid, call.dispositions, null, () => {}));
    // A call ended: it is now the newest of the last calls.
    if (ended) loadCalls();
  }

  document.addEventListener('switchboard:agent', (e) => {
    showReasons(e.detail.me.away_reasons || []);
    $('my-calls').hidden = false;
    loadCalls();
  });
  document.addEventListener('switchboard:me', (e) => {
    const me = e.detail;
    const select = $('away-reason');
    if (document.activeElement !== select) select.value = me.state === 'away' ? me.away_reason || '' : select.value;
    followCall(me);
  });
  document.addEventListener('switchboard:sign-out', () => {
    heldSid = null;
    asked++;
    $('call-wrap-up').replaceChildren();
    $('my-calls-list').replaceChildren();
    $('my-calls').hidden = true;
  });
})();
