/* baton ui: the page of `baton ui`, plain JavaScript and the DOM, no build
 * step. It reads the JSON API of the same server (docs/ui.md) and redraws
 * the current view every two seconds while "live" is on. Every value from
 * the API reaches the page as text (textContent), never as HTML. */
'use strict';

const view = document.getElementById('view');
const flashEl = document.getElementById('flash');
let current = null; /* the view on screen: {refresh()} */
let serverInfo = { read_only: false };

/* ---- helpers ---- */

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function flash(text, ok) {
  flashEl.textContent = text || '';
  flashEl.className = text ? (ok ? 'ok' : 'error') : '';
}

async function api(path) {
  const resp = await fetch('/api/' + path, { headers: { Accept: 'application/json' } });
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

/* An action: a POST the server accepts only from this page (X-Baton-UI,
 * JSON), with the token when the server asks for one. */
async function post(path, body, retried) {
  const headers = { 'Content-Type': 'application/json', 'X-Baton-UI': '1' };
  const token = sessionStorage.getItem('baton-token');
  if (token) headers.Authorization = 'Bearer ' + token;
  const resp = await fetch('/api/' + path, { method: 'POST', headers, body: JSON.stringify(body || {}) });
  const out = await resp.json();
  if (resp.status === 401 && !retried) {
    const t = prompt('This action needs the token of baton ui (--token):');
    if (t) {
      sessionStorage.setItem('baton-token', t);
      return post(path, body, true);
    }
  }
  if (!resp.ok) throw new Error(out.error || resp.statusText);
  return out;
}

async function act(what, fn) {
  try {
    await fn();
    flash(what + ': done', true);
  } catch (e) {
    flash(what + ': ' + e.message, false);
  }
  if (current) current.refresh();
}

const enc = encodeURIComponent;
const ms = (t) => (t ? Date.parse(t) : NaN);
const isFinal = (s) => ['completed', 'failed', 'cancelled', 'terminated'].includes(s);
const json = (v) => JSON.stringify(v, null, 2);
const statusBadge = (s) => h('span', { class: 'status ' + (s || ''), 'data-status': s || '' }, s || '?');
const idLink = (id) => h('a', { href: '#/instance/' + enc(id), class: 'id' }, id);

function duration(msec) {
  if (!isFinite(msec) || msec < 0) return '';
  if (msec < 1000) return msec.toFixed(0) + ' ms';
  if (msec < 60000) return (msec / 1000).toFixed(2) + ' s';
  if (msec < 3600000) return (msec / 60000).toFixed(1) + ' min';
  return (msec / 3600000).toFixed(1) + ' h';
}

function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows));
}

function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
}

/* A view's redraw, only when what it shows changed: the DOM (and what is
 * selected or focused in it) stays put between identical answers. */
function changed(state, data) {
  const text = JSON.stringify(data);
  if (state.last === text) return false;
  state.last = text;
  return true;
}

/* ---- instances ---- */

function instancesView() {
  const q = hashQuery();
  const state = { status: q.get('status') || 'all', type: q.get('type') || '', query: q.get('query') || '', cursors: [''] };
  const status = h('select', { name: 'status', id: 'f-status' },
    ['all', 'running', 'paused', 'completed', 'failed', 'cancelled', 'terminated', 'blocked']
      .map((s) => h('option', { value: s, selected: s === state.status }, s)));
  const type = h('input', { name: 'type', id: 'f-type', placeholder: 'workflow type', value: state.type });
  const query = h('input', { name: 'query', id: 'f-query', size: 30, value: state.query,
    placeholder: 'brand="acme" AND tier>=2' });
  const idBox = h('input', { id: 'f-id', placeholder: 'open an id' });
  const body = h('div');
  const pager = h('div', { class: 'bar' });
  const form = h('form', { class: 'bar', id: 'filters', onsubmit: (e) => {
    e.preventDefault();
    if (idBox.value) { location.hash = '#/instance/' + enc(idBox.value); return; }
    location.hash = '#/instances?status=' + enc(status.value) + '&type=' + enc(type.value) +
      '&query=' + enc(query.value);
  } }, 'status', status, 'type', type, 'query', query, h('button', { type: 'submit' }, 'Filter'), idBox);
  view.replaceChildren(h('h1', {}, 'Instances'), form, body, pager);

  async function refresh() {
    const cursor = state.cursors[state.cursors.length - 1];
    let page;
    try {
      page = await api('instances?status=' + enc(state.status) + '&type=' + enc(state.type) +
        '&query=' + enc(state.query) + '&limit=50&cursor=' + enc(cursor));
    } catch (e) { flash(e.message); return; }
    if (!changed(state, [page, state.cursors])) return;
    const now = Date.now();
    body.replaceChildren(table(['status', 'type', 'id', 'started', 'closed', 'duration'],
      page.instances.map((r) => {
        const closed = isFinal(r.status) ? r.updated : null;
        return h('tr', { class: 'instance', 'data-id': r.id }, h('td', {}, statusBadge(r.status)),
          h('td', {}, r.type), h('td', { class: 'mono' }, idLink(r.id)), h('td', {}, r.created),
          h('td', {}, closed || ''),
          h('td', { class: 'num' }, duration((closed ? ms(closed) : now) - ms(r.created))));
      })), page.instances.length ? '' : h('p', { class: 'muted' }, 'No instances.'));
    pager.replaceChildren(
      h('button', { disabled: state.cursors.length < 2, onclick: () => { state.cursors.pop(); refresh(); } }, 'Newer'),
      h('button', { id: 'older', disabled: !page.next, onclick: () => { state.cursors.push(page.next); refresh(); } }, 'Older'),
      h('span', { class: 'muted' }, 'page ' + state.cursors.length));
  }
  return { refresh };
}

/* ---- one instance ---- */

/* The history as bars on a time axis: one per activity attempt (failed and
 * timed-out attempts marked), retry backoffs, sleeps, signal waits and
 * children. Records pair up by their seq (and attempt). */
function timelineBars(records, endMs) {
  const open = new Map();
  const bars = [];
  const start = (key, bar) => { open.set(key, bar); bars.push(bar); };
  const close = (key, t, outcome) => {
    const b = open.get(key);
    if (!b) return;
    b.end = t;
    if (outcome) b.outcome = outcome;
    open.delete(key);
  };
  for (const r of records) {
    const t = ms(r.ts);
    switch (r.ev) {
      case 'activity_scheduled':
        start('a' + r.seq + '/' + r.attempt, { kind: 'activity', start: t, seq: r.seq, attempt: r.attempt,
          label: r.name + (r.attempt > 1 ? ' (retry ' + (r.attempt - 1) + ')' : '') });
        break;
      case 'activity_completed': close('a' + r.seq + '/' + r.attempt, t, 'ok'); break;
      case 'activity_failed': close('a' + r.seq + '/' + r.attempt, t, 'failed'); break;
      case 'retry_scheduled':
        start('b' + r.seq, { kind: 'backoff', start: t, seq: r.seq, label: r.name + ' backoff' });
        break;
      case 'sleep_started':
        start('s' + r.seq, { kind: 'sleep', start: t, seq: r.seq, label: 'sleep' });
        break;
      case 'signal_wait':
        start('w' + r.seq, { kind: 'wait', start: t, seq: r.seq, name: r.name, label: 'wait for signal ' + r.name });
        break;
      case 'signal_received':
        for (const [k, b] of open) if (b.kind === 'wait' && b.name === r.name) { close(k, t, 'ok'); break; }
        break;
      case 'child_started':
        start('c' + r.seq, { kind: 'child', start: t, seq: r.seq, label: 'child ' + r.child, child: r.child });
        break;
      case 'child_completed': close('c' + r.seq, t, 'ok'); break;
      case 'child_failed': close('c' + r.seq, t, 'failed'); break;
      case 'timer_fired':
        if (r.kind === 'timeout') close('a' + r.seq + '/' + r.attempt, t, 'timeout');
        else if (r.kind === 'retry') close('b' + r.seq, t);
        else if (r.kind === 'sleep') close('s' + r.seq, t);
        else if (r.kind === 'signal_timeout') close('w' + r.seq, t, 'timeout');
        break;
      default:
    }
  }
  for (const b of open.values()) { b.end = endMs; b.outcome = b.outcome || 'running'; }
  return bars;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function timeline(records, endMs) {
  const bars = timelineBars(records, endMs);
  if (!records.length) return h('p', { class: 'muted' }, 'No history.');
  const t0 = ms(records[0].ts);
  const t1 = Math.max(endMs, ...bars.map((b) => b.end || t0), t0 + 1);
  const left = 220, width = 900, row = 18, top = 22;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const svg = s('svg', { width, height: top + bars.length * row + 8, class: 'timeline-svg' });
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    svg.append(s('line', { x1: x(t), x2: x(t), y1: 14, y2: top + bars.length * row, class: 'axis' }),
      s('text', { x: x(t), y: 11, 'text-anchor': i === 4 ? 'end' : i ? 'middle' : 'start' },
        '+' + duration(t - t0)));
  }
  bars.forEach((b, i) => {
    const y = top + i * row;
    const cls = 'bar ' + b.kind + (b.outcome && b.outcome !== 'ok' ? ' ' + b.outcome : '');
    const w = Math.max(2, x(b.end) - x(b.start));
    const rect = s('rect', { x: x(b.start), y, width: w, height: row - 5, class: cls,
      'data-kind': b.kind, 'data-outcome': b.outcome || '' });
    rect.append(s('title', {}, b.label + ': ' + duration(b.end - b.start) + (b.outcome ? ' (' + b.outcome + ')' : '')));
    svg.append(s('text', { x: 4, y: y + row - 8 }, (b.seq !== undefined ? b.seq + ' ' : '') + b.label.slice(0, 34)), rect);
  });
  return h('div', { class: 'timeline' }, svg);
}

function controlButton(d, verb, label, cls) {
  return h('button', { id: verb, class: cls, onclick: () => {
    const reason = prompt(label + ' ' + d.id + '? Reason:', '');
    if (reason !== null) act(verb, () => post('instances/' + enc(d.id) + '/' + verb, { reason }));
  } }, label);
}

/* Reset: a new run from a step (its seq), or from the last failed one. */
function resetButton(d) {
  return h('button', { id: 'reset', onclick: () => {
    const to = prompt('Reset ' + d.id + ': a new run replayed up to this step (its seq), or "last" for the last failed step:', 'last');
    if (to === null) return;
    const body = to.trim() === 'last' ? { to_last_failure: true } : { to: Number(to) };
    act('reset', () => post('instances/' + enc(d.id) + '/reset', body));
  } }, 'Reset');
}

function actionsBar(d) {
  if (serverInfo.read_only) return '';
  if (isFinal(d.status)) return h('div', { class: 'bar' }, resetButton(d));
  const name = h('input', { id: 'signal-name', placeholder: 'signal name', size: 14 });
  const payload = h('textarea', { id: 'signal-payload', rows: 1, cols: 40, placeholder: '{"decision": "approved"}' });
  return h('div', { class: 'bar' },
    h('form', { class: 'bar', id: 'signal-form', onsubmit: (e) => {
      e.preventDefault();
      let p = null;
      try { p = payload.value.trim() ? JSON.parse(payload.value) : null; } catch (err) {
        flash('payload: not JSON: ' + err.message); return;
      }
      if (!name.value) { flash('signal: give a name'); return; }
      if (!confirm('Send signal "' + name.value + '" to ' + d.id + '?')) return;
      act('signal ' + name.value, () => post('instances/' + enc(d.id) + '/signal', { name: name.value, payload: p }));
    } }, name, payload, h('button', { type: 'submit', id: 'signal-send' }, 'Send signal')),
    d.status === 'paused' ? controlButton(d, 'resume', 'Resume') : controlButton(d, 'pause', 'Pause'),
    resetButton(d),
    controlButton(d, 'cancel', 'Cancel'),
    controlButton(d, 'terminate', 'Terminate', 'danger'));
}

function summary(d, records) {
  const children = records.filter((r) => r.ev === 'child_started').map((r) => r.child);
  const dl = h('dl', { class: 'grid' });
  const row = (k, v) => { if (v !== undefined && v !== null && v !== '') dl.append(h('dt', {}, k), h('dd', {}, v)); };
  row('status', statusBadge(d.status));
  row('type', d.type);
  row('queue', d.queue);
  row('run', d.run);
  row('created', d.created);
  row('updated', d.updated);
  row('duration', duration((isFinal(d.status) ? ms(d.updated) : Date.now()) - ms(d.created)));
  if (d.parent) row('parent', h('span', {}, idLink(d.parent), ' (seq ' + d.parent_seq + ')'));
  if (children.length) row('children', h('span', {}, children.map((c) => h('span', {}, idLink(c), ' '))));
  if (d.cancel_requested) row('cancel', 'requested');
  if (d.signals) row('buffered signals', h('code', {}, JSON.stringify(d.signals)));
  return dl;
}

function pendingSteps(d) {
  const open = d.steps.filter((st) => st.state !== 'done' && st.state !== 'failed');
  if (!open.length) return h('p', { class: 'muted' }, 'Nothing pending.');
  return table(['seq', 'kind', 'name', 'state', 'attempt', 'due'], open.map((st) =>
    h('tr', { class: 'pending' }, h('td', {}, st.seq), h('td', {}, st.kind), h('td', {}, st.name),
      h('td', {}, st.state), h('td', {}, st.attempt), h('td', {}, st.due || ''))));
}

function eventTable(records) {
  return table(['time', 'event', 'details'], records.map((r) => {
    const rest = Object.assign({}, r);
    delete rest.ts;
    delete rest.ev;
    return h('tr', { class: 'event' }, h('td', { class: 'mono' }, r.ts), h('td', {}, r.ev),
      h('td', { class: 'mono' }, JSON.stringify(rest)));
  }));
}

function instanceView(id) {
  const head = h('div');
  const body = h('div');
  view.replaceChildren(head, body);
  const seen = {};
  let lastStatus = null;

  async function refresh() {
    let d, records;
    try {
      [d, records] = await Promise.all([api('instances/' + enc(id)), api('instances/' + enc(id) + '/history')]);
    } catch (e) {
      head.replaceChildren(h('h1', {}, id));
      flash(e.message);
      return;
    }
    if (!changed(seen, [d, records])) return;
    /* the forms are kept while typing: redrawn only when the status changes */
    if (lastStatus !== d.status) {
      head.replaceChildren(h('h1', {}, d.type + ' ', h('span', { class: 'mono' }, d.id), ' ',
        h('span', { id: 'status' }, statusBadge(d.status))), actionsBar(d));
      lastStatus = d.status;
    }
    const end = isFinal(d.status) ? ms(d.updated) : Date.now();
    body.replaceChildren(...[
      summary(d, records),
      h('h2', {}, 'Input'), h('pre', { id: 'input' }, json(d.input)),
      d.result !== null ? [h('h2', {}, 'Result'), h('pre', { id: 'result' }, json(d.result))] : '',
      d.error !== null ? [h('h2', {}, 'Error'), h('pre', { id: 'error' }, json(d.error))] : '',
      h('h2', {}, 'Pending steps and timers'), pendingSteps(d),
      h('h2', {}, 'Timeline'),
      h('div', { class: 'legend' }, h('span', { class: 'l-ok' }, 'activity attempt'),
        h('span', { class: 'l-failed' }, 'failed'), h('span', { class: 'l-timeout' }, 'timed out'),
        h('span', { class: 'l-backoff' }, 'retry backoff'), h('span', { class: 'l-wait' }, 'signal wait'),
        h('span', { class: 'l-sleep' }, 'sleep'), h('span', { class: 'l-child' }, 'child')),
      timeline(records, end),
      h('h2', {}, 'Events (' + records.length + ')'), eventTable(records),
      h('h2', {}, 'Raw JSON'), h('pre', { id: 'raw' }, json({ describe: d, history: records }))].flat());
  }
  return { refresh };
}

/* ---- dead letters ---- */

function dlqView() {
  const body = h('div');
  const whole = h('pre', { id: 'letter' });
  const picked = new Set();
  const seen = {};
  view.replaceChildren(h('h1', {}, 'Dead letters'), h('div', { class: 'bar' },
    serverInfo.read_only ? '' : h('button', { id: 'redrive', onclick: () => {
      if (!picked.size) { flash('pick dead letters to redrive'); return; }
      if (!confirm('Redrive ' + [...picked].join(', ') + '?')) return;
      act('redrive', () => post('dlq/redrive', { names: [...picked] }));
    } }, 'Redrive selected'),
    h('span', { class: 'muted' }, 'each original message produced again to its origin topic')), body, whole);

  async function refresh() {
    let rows;
    try { rows = await api('dlq?limit=500'); } catch (e) { flash(e.message); return; }
    if (!changed(seen, [rows, [...picked]])) return;
    body.replaceChildren(rows.length ? table(['', 'name', 'time', 'reason', 'origin', 'redriven', 'size'],
      rows.map((l) => h('tr', { class: 'letter' },
        h('td', {}, h('input', { type: 'checkbox', checked: picked.has(l.name), disabled: l.redriven,
          onchange: (e) => (e.target.checked ? picked.add(l.name) : picked.delete(l.name)) })),
        h('td', { class: 'mono' }, h('a', { href: '#', onclick: async (e) => {
          e.preventDefault();
          try { whole.textContent = json(await api('dlq/' + enc(l.name))); } catch (err) { flash(err.message); }
        } }, l.name)),
        h('td', {}, l.time), h('td', {}, l.reason),
        h('td', { class: 'mono' }, l.origin.topic + '/' + l.origin.partition + '/' + l.origin.offset),
        h('td', {}, l.redriven ? 'yes' : 'no'), h('td', { class: 'num' }, l.payload_size))))
      : h('p', { class: 'muted' }, 'No dead letters.'));
  }
  return { refresh, slow: true };
}

/* ---- limits ---- */

function limitsView() {
  const rate = h('div');
  const cc = h('div');
  const key = h('input', { id: 'rate-key', placeholder: 'key', size: 16 });
  const value = h('input', { id: 'rate-value', placeholder: 'rate/s', size: 6 });
  const burst = h('input', { id: 'rate-burst', placeholder: 'burst', size: 6 });
  const seen = {};
  view.replaceChildren(h('h1', {}, 'Limits'),
    serverInfo.read_only ? '' : h('form', { class: 'bar', id: 'rate-form', onsubmit: (e) => {
      e.preventDefault();
      const body = { key: key.value, rate: value.value };
      if (burst.value) body.burst = Number(burst.value);
      if (!confirm('Set ' + key.value + ' to ' + value.value + '/s' + (burst.value ? ' burst ' + burst.value : '') + '?')) return;
      act('rate ' + key.value, () => post('limits/rate', body));
    } }, 'set a rate', key, value, burst, h('button', { type: 'submit' }, 'Save'),
      h('span', { class: 'muted' }, 'the HSET of baton ratelimit set')),
    h('h2', {}, 'Rate limits (token buckets)'), rate,
    h('p', { class: 'muted' }, 'Waiters: tasks of every live worker waiting for a token. Throttles: attempts that reported "throttled", each holding the bucket.'),
    h('h2', {}, 'Concurrency limits'), cc);

  async function refresh() {
    let l;
    try { l = await api('limits'); } catch (e) { flash(e.message); return; }
    if (!changed(seen, l)) return;
    rate.replaceChildren(table(['key', 'rate/s', 'burst', 'tokens', 'waiters', 'throttles', 'last throttle', 'throttled until'], l.rate.map((r) =>
      h('tr', { class: 'rate', 'data-key': r.key, onclick: () => { key.value = r.key; value.value = r.rate; burst.value = r.burst; } },
        h('td', { class: 'mono' }, r.key), h('td', { class: 'num' }, r.rate), h('td', { class: 'num' }, r.burst),
        h('td', { class: 'num tokens' }, r.tokens === null ? '' : Number(r.tokens).toFixed(3)),
        h('td', { class: 'num waiters' }, r.waiters === null ? '' : r.waiters),
        h('td', { class: 'num throttles' }, r.throttles),
        h('td', {}, r.throttled_at || ''),
        h('td', {}, r.until || '')))));
    cc.replaceChildren(table(['key', 'limit', 'slots in use'], l.concurrency.map((r) =>
      h('tr', { class: 'concurrency' }, h('td', { class: 'mono' }, r.key), h('td', { class: 'num' }, r.limit),
        h('td', { class: 'num' }, r.in_use)))));
  }
  return { refresh, fast: true };
}

/* ---- schedules ---- */

function schedulesView() {
  const body = h('div');
  const seen = {};
  view.replaceChildren(h('h1', {}, 'Schedules'), body);
  const verb = (sc, v) => h('button', { class: 'verb-' + v, onclick: () => {
    if (confirm(v + ' schedule ' + sc.name + '?')) act(v + ' ' + sc.name, () => post('schedules/' + enc(sc.name) + '/' + v, {}));
  } }, v);

  async function refresh() {
    let rows;
    try { rows = await api('schedules'); } catch (e) { flash(e.message); return; }
    if (!changed(seen, rows)) return;
    body.replaceChildren(rows.length ? table(['name', 'state', 'next fire', 'cron', 'tz', 'workflow', 'queue', 'overlap', 'last', ''],
      rows.map((sc) => h('tr', { class: 'schedule', 'data-name': sc.name },
        h('td', { class: 'mono' }, sc.name), h('td', {}, sc.state), h('td', {}, sc.state === 'paused' ? '' : sc.next),
        h('td', { class: 'mono' }, sc.once ? 'once' : sc.cron), h('td', {}, sc.tz || ''), h('td', {}, sc.workflow),
        h('td', {}, sc.queue), h('td', {}, sc.overlap || ''), h('td', {}, sc.last_id ? idLink(sc.last_id) : ''),
        h('td', {}, serverInfo.read_only ? '' : [sc.state === 'paused' ? verb(sc, 'resume') : verb(sc, 'pause'), ' ', verb(sc, 'trigger')],
          sc.error ? h('div', { class: 'muted' }, sc.error) : ''))))
      : h('p', { class: 'muted' }, 'No schedules.'));
  }
  return { refresh };
}

/* ---- routing and the live refresh ---- */

function route() {
  const hash = location.hash || '#/instances';
  const path = hash.slice(2).split('?')[0];
  const [name, ...rest] = path.split('/');
  flash('');
  for (const a of document.querySelectorAll('header nav a'))
    a.classList.toggle('active', a.dataset.view === name || (name === 'instance' && a.dataset.view === 'instances'));
  if (name === 'instance') current = instanceView(decodeURIComponent(rest.join('/')));
  else if (name === 'dlq') current = dlqView();
  else if (name === 'limits') current = limitsView();
  else if (name === 'schedules') current = schedulesView();
  else current = instancesView();
  current.refresh();
}

let ticks = 0;
setInterval(() => {
  ticks++;
  if (!current || !document.getElementById('live').checked || document.hidden) return;
  /* the dead letters are read from Kafka (seconds): less often */
  if (current.slow && ticks % 5) return;
  if (current.fast || ticks % 2 === 0) current.refresh();
}, 1000);

window.addEventListener('hashchange', route);
/* the view does not wait for the server's mode: it is drawn again (without
 * its actions) in the rare read-only case */
route();
api('ui').then((info) => {
  serverInfo = info;
  if (info.read_only) {
    document.getElementById('mode').textContent = 'read-only';
    route();
  }
}).catch(() => {});
