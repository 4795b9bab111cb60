/*
 * bctx live console: reads the HTTP gateway's routes (GET /contexts,
 * /stats, /contexts/{c}/events and its SSE stream) and posts commands and
 * admin ops.  Plain JS, no framework and no build step.  Everything that
 * comes from the host is put in the page as text (textContent, text
 * nodes), never as HTML.  See docs/console.md.
 */
'use strict';

const POLL_MS = 1000;            // /contexts and /stats this often
const WINDOW_S = 60;             // the chart's width
const PAGE = 20;                 // events per page in the stream browser
const MAX_ROWS = 500;            // live rows kept before the oldest go
const TOKEN_KEY = 'bctx.adminToken';

const $ = (id) => document.getElementById(id);

const state = {
  contexts: [],                  // the last /contexts reply's list
  previous: null,                // the last /stats sample: { t, counts }
  rates: {},                     // context -> commands/s
  history: [],                   // { t, cmds, lag } over the last WINDOW_S
  stream: {
    from: 1,                     // the page shown starts here
    next: null,                  // where the next page starts, or null
    starts: [],                  // the pages before, for "prev"
    source: null,                // the live EventSource, or null
    last: 0,                     // the last position shown
    live: 0,                     // events appended live so far
  },
};

/* --- small helpers -------------------------------------------------- */

/* A new element: props are class, text, dataset, on<event>, or attributes;
 * children are nodes or strings (which become text nodes). */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

const num = (v) => el('td', { class: 'num', text: v === undefined || v === null ? '—' : String(v) });
const cell = (v, cls) => el('td', { class: cls || '', text: v === undefined || v === null ? '—' : String(v) });
const seg = encodeURIComponent;
const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

/* One request to the gateway.  Answers { status, reply } where reply is
 * the wire reply (or an error shaped like one when none came). */
async function call(method, path, { body, admin, headers = {} } = {}) {
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (admin && token()) headers.Authorization = 'Bearer ' + token();
  let res;
  try {
    res = await fetch(path, { method, headers, body, cache: 'no-store' });
  } catch (e) {
    return { status: 0, reply: wireError('unavailable', 'no answer from the host: ' + e.message) };
  }
  try {
    return { status: res.status, reply: await res.json() };
  } catch (e) {
    return { status: res.status, reply: wireError('internal', `HTTP ${res.status}, not JSON`) };
  }
}

const wireError = (code, message) => ({ ok: false, error: { code, message } });
const errorText = (status, reply) =>
  `${status} ${reply.error ? reply.error.code + ': ' + reply.error.message : 'error'}`;

/* The banner under the header: kind 'info' or '' (an error). */
function notify(text, kind, status) {
  const n = $('notice');
  n.textContent = text;
  n.className = kind || '';
  n.dataset.status = status === undefined ? '' : String(status);
  n.hidden = false;
}

/* --- admin ------------------------------------------------------------ */

/* A button for an admin op: off without a token. */
function adminButton(label, path) {
  const b = el('button', { type: 'button', class: 'admin', text: label,
                           onclick: () => adminOp(label, path) });
  setAdminState(b);
  return b;
}

function setAdminState(b) {
  b.disabled = !token();
  b.title = token() ? '' : 'needs the admin token (field at the top)';
}

async function adminOp(label, path) {
  const { status, reply } = await call('POST', path, { admin: true });
  if (status === 403)
    notify(`403 forbidden: ${label} refused. ${reply.error ? reply.error.message : ''}. ` +
           'Enter the host\'s admin token (host.http_admin_token) at the top.', '', status);
  else if (!reply.ok)
    notify(`${label}: ${errorText(status, reply)}`, '', status);
  else
    notify(`${label}: done. ${JSON.stringify(reply)}`, 'info', status);
  refresh();
}

function showAdmin() {
  $('admin-state').textContent = token()
    ? 'token set for this tab (sessionStorage); the host checks it on each admin op'
    : 'no token: admin buttons are off';
  document.querySelectorAll('button.admin').forEach(setAdminState);
}

/* --- contexts, readers, bridges ------------------------------------- */

function renderContexts(stats) {
  const rows = state.contexts.map((c) => {
    const s = (stats.contexts || {})[c.name] || {};
    const p = c.process || {};
    const rate = state.rates[c.name];
    return el('tr', { dataset: { context: c.name } },
      cell(c.name, 'name'), cell(c.version), num(p.pid), cell(p.state, 'state-' + p.state),
      num(c.position), num(rate === undefined ? null : rate.toFixed(1)),
      num(s.accepted), num(s.rejected),
      el('td', {}, adminButton('Reload', `/contexts/${seg(c.name)}/reload`)));
  });
  $('contexts').tBodies[0].replaceChildren(...rows);
}

function renderRemote(remote) {
  $('remote').textContent = remote && remote.length
    ? 'On peers: ' + remote.map((r) => `${r.name} (peer ${r.peer}, ${r.api})`).join(', ')
    : '';
}

const totalLag = (r) => Object.values(r.lag || {}).reduce((a, b) => a + b, 0);
const lagText = (r) => Object.entries(r.lag || {}).map(([k, v]) => `${k} ${v}`).join(', ');

function renderReaders(stats) {
  const rows = [];
  for (const [name, p] of Object.entries(stats.projections || {}))
    rows.push(readerRow(name, 'projection', p, (p.poison || []).length,
      adminButton('Replay', `/projections/${seg(name)}/replay`)));
  for (const [name, r] of Object.entries(stats.reactors || {}))
    rows.push(readerRow(name, 'reactor', r, r.parked,
      adminButton('Retry', `/reactors/${seg(name)}/retry`)));
  $('readers').tBodies[0].replaceChildren(...rows);
}

function readerRow(name, kind, r, parked, button) {
  return el('tr', { dataset: { reader: name, kind } },
    cell(name), cell(kind), cell(r.context), cell(r.state, 'state-' + r.state),
    el('td', { class: 'num', title: lagText(r), text: String(totalLag(r)) }),
    num(r.handled), num(parked), cell(r.error), el('td', {}, button));
}

function renderLinks(stats) {
  const bridges = Object.entries(stats.bridges || {}).map(([name, b]) =>
    el('tr', {}, cell(name), cell(b.peer), cell(b.state, 'state-' + b.state),
      num(b.checkpoint), num(b.peer_head), num(b.lag),
      cell(typeof b.seconds_since_contact === 'number'
        ? b.seconds_since_contact.toFixed(1) + ' s ago' : null)));
  const peers = Object.entries(stats.peers || {}).map(([name, p]) =>
    el('tr', {}, cell(name), cell(p.api), cell(p.publish), num(p.forwarded), num(p.unanswered)));
  if (!bridges.length) bridges.push(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'no bridges' })));
  if (!peers.length) peers.push(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'no peers' })));
  $('bridges').tBodies[0].replaceChildren(...bridges);
  $('peers').tBodies[0].replaceChildren(...peers);
}

/* Fills a <select> with names, keeping its choice when it is still there. */
function fillSelect(select, names) {
  const keep = select.value;
  if ([...select.options].map((o) => o.value).join('\n') === names.join('\n')) return;
  select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
  if (names.includes(keep)) select.value = keep;
  select.dispatchEvent(new Event('change'));
}

/* --- commands/s and the chart ---------------------------------------- */

/* Commands/s per context from the accepted + rejected counters of two
 * successive /stats samples, and one point of the chart. */
function sample(stats) {
  const t = performance.now() / 1000;
  const counts = {};
  for (const [name, c] of Object.entries(stats.contexts || {}))
    counts[name] = (c.accepted || 0) + (c.rejected || 0);
  const prev = state.previous;
  let total = 0;
  if (prev && t > prev.t) {
    for (const [name, n] of Object.entries(counts)) {
      const rate = prev.counts[name] === undefined ? 0 : Math.max(0, n - prev.counts[name]) / (t - prev.t);
      state.rates[name] = rate;
      total += rate;
    }
  }
  state.previous = { t, counts };
  const readers = [...Object.values(stats.projections || {}), ...Object.values(stats.reactors || {})];
  const lag = readers.reduce((m, r) => Math.max(m, totalLag(r)), 0);
  if (prev) state.history.push({ t, cmds: total, lag });
  state.history = state.history.filter((h) => h.t > t - WINDOW_S);
}

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 640, h = canvas.clientHeight || 160;
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  g.strokeStyle = css.getPropertyValue('--line');
  g.strokeRect(0.5, 0.5, w - 1, h - 1);
  const now = performance.now() / 1000;
  const maxCmd = Math.max(1, ...state.history.map((p) => p.cmds));
  const maxLag = Math.max(1, ...state.history.map((p) => p.lag));
  plot(g, w, h, now, (p) => p.cmds / maxCmd, css.getPropertyValue('--accent'));
  plot(g, w, h, now, (p) => p.lag / maxLag, css.getPropertyValue('--lag'));
  g.fillStyle = css.getPropertyValue('--muted');
  g.font = '11px sans-serif';
  g.fillText(`max ${maxCmd.toFixed(1)} commands/s`, 6, 14);
  g.fillText(`max lag ${maxLag}`, w - 90, 14);
  g.fillText(`-${WINDOW_S} s`, 6, h - 6);
  g.fillText('now', w - 28, h - 6);
}

/* One line of the chart: y(point) in 0..1 over the last WINDOW_S. */
function plot(g, w, h, now, y, color) {
  g.strokeStyle = color;
  g.lineWidth = 2;
  g.beginPath();
  state.history.forEach((p, i) => {
    const x = w - ((now - p.t) / WINDOW_S) * w;
    const yy = h - 20 - y(p) * (h - 40);
    if (i === 0) g.moveTo(x, yy); else g.lineTo(x, yy);
  });
  g.stroke();
}

/* --- the poll --------------------------------------------------------- */

async function refresh() {
  const [ctx, st] = await Promise.all([call('GET', '/contexts'), call('GET', '/stats')]);
  const conn = $('conn');
  if (!ctx.reply.ok || !st.reply.ok) {
    conn.textContent = 'no answer: ' + errorText(ctx.reply.ok ? st.status : ctx.status,
                                                 ctx.reply.ok ? st.reply : ctx.reply);
    conn.className = 'badge down';
    return;
  }
  conn.textContent = 'connected';
  conn.className = 'badge ok';
  $('host-name').textContent = ctx.reply.host || '';
  state.contexts = ctx.reply.contexts || [];
  sample(st.reply);
  renderContexts(st.reply);
  renderRemote(ctx.reply.remote);
  renderReaders(st.reply);
  renderLinks(st.reply);
  const names = state.contexts.map((c) => c.name);
  fillSelect($('send-context'), names);
  fillSelect($('stream-context'), names);
  drawChart();
}

/* --- sending a command -------------------------------------------------- */

function fillCommands() {
  const c = state.contexts.find((x) => x.name === $('send-context').value);
  fillSelect($('send-command'), c ? c.commands || [] : []);
}

/* The data goes as typed: the gateway says what is wrong with it. */
async function sendCommand(ev) {
  ev.preventDefault();
  const context = $('send-context').value, command = $('send-command').value;
  const headers = {};
  const id = $('send-id').value.trim();
  if (id) headers['Idempotency-Key'] = id;
  const out = $('send-reply');
  out.textContent = 'sending…';
  const { status, reply } = await call('POST', `/contexts/${seg(context)}/commands/${seg(command)}`,
                                       { body: $('send-data').value, headers });
  out.textContent = `HTTP ${status}\n${JSON.stringify(reply, null, 2)}`;
  out.className = reply.ok ? 'reply' : 'reply bad';
  out.dataset.status = String(status);
}

/* --- the stream browser ---------------------------------------------- */

function eventRow(e, live) {
  const m = e.metadata || {};
  const about = [m.time, m.context_version && 'v' + m.context_version, m.origin,
                 m.command_id && 'command ' + m.command_id].filter(Boolean).join(' · ');
  return el('li', { class: live ? 'live' : '', dataset: { position: e.position } },
    el('details', {},
      el('summary', {}, el('span', { class: 'pos', text: '#' + e.position }),
        el('span', { class: 'type', text: e.type }), ` ${e.aggregate} v${e.version} `,
        el('span', { class: 'muted', text: about })),
      el('pre', { text: 'data ' + JSON.stringify(e.data, null, 2) }),
      el('pre', { text: 'metadata ' + JSON.stringify(m, null, 2) })));
}

function streamState(text) {
  $('stream-state').textContent = text;
}

/* Shows the page of events from `from` (the aggregate's only, if one is
 * named).  Return the reply, or null on an error (shown). */
async function loadPage(from) {
  const s = state.stream;
  const context = $('stream-context').value;
  if (!context) return null;
  const q = new URLSearchParams({ from: String(from), limit: String(PAGE) });
  const aggregate = $('stream-aggregate').value.trim();
  if (aggregate) q.set('aggregate', aggregate);
  const { status, reply } = await call('GET', `/contexts/${seg(context)}/events?${q}`);
  if (!reply.ok) {
    streamState(errorText(status, reply));
    return null;
  }
  const events = reply.events || [];
  s.from = from;
  s.next = reply.next;
  s.last = events.length ? events[events.length - 1].position : from - 1;
  $('events').replaceChildren(...events.map((e) => eventRow(e, false)));
  $('stream-from').value = String(from);
  $('stream-prev').disabled = from <= 1;
  $('stream-next').disabled = !reply.next;
  streamState(`${events.length} event(s) from position ${from}` + (aggregate ? ` of ${aggregate}` : ''));
  return reply;
}

async function showFrom(from, pushStart) {
  stopLive();
  if (pushStart) state.stream.starts.push(state.stream.from);
  await loadPage(Math.max(1, from));
}

function prevPage() {
  const back = state.stream.starts.pop();
  showFrom(back !== undefined ? back : state.stream.from - PAGE, false);
}

function stopLive() {
  const s = state.stream;
  if (s.source) s.source.close();
  s.source = null;
  $('stream-live').checked = false;
}

/* Live: the last page, then every new event through the SSE route, which
 * resumes by itself (Last-Event-ID) after a cut. */
async function startLive() {
  stopLive();
  $('stream-live').checked = true;
  const s = state.stream;
  const context = $('stream-context').value;
  const c = state.contexts.find((x) => x.name === context);
  const head = c ? c.position : 0;
  const reply = await loadPage(Math.max(1, head - PAGE + 1));
  if (!reply || !$('stream-live').checked) return;
  const from = reply.next || Math.max(head, s.last) + 1;
  const aggregate = $('stream-aggregate').value.trim();
  const source = new EventSource(`/contexts/${seg(context)}/events/stream?from=${from}`);
  s.source = source;
  source.onopen = () => streamState(`live from position ${from}`);
  source.onerror = () => streamState('live: connection lost, retrying…');
  source.onmessage = (msg) => appendLive(JSON.parse(msg.data), aggregate);
  $('stream-prev').disabled = $('stream-next').disabled = true;
}

function appendLive(e, aggregate) {
  const s = state.stream;
  if (e.position <= s.last || (aggregate && e.aggregate !== aggregate)) return;
  s.last = e.position;
  const list = $('events');
  list.append(eventRow(e, true));
  while (list.children.length > MAX_ROWS) list.firstElementChild.remove();
  s.live += 1;
  list.dataset.live = String(s.live);
  streamState(`live: ${s.live} new event(s), last at position ${e.position}`);
}

/* --- wiring ------------------------------------------------------------ */

function wire() {
  $('admin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('admin-token').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    $('admin-token').value = '';
    showAdmin();
  });
  $('admin-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showAdmin();
  });
  $('send-context').addEventListener('change', fillCommands);
  $('send-form').addEventListener('submit', sendCommand);
  $('stream-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.stream.starts = [];
    showFrom(Number($('stream-from').value) || 1, false);
  });
  $('stream-prev').addEventListener('click', prevPage);
  $('stream-next').addEventListener('click', () => showFrom(state.stream.next, true));
  $('stream-live').addEventListener('change', () =>
    $('stream-live').checked ? startLive() : stopLive());
  $('stream-context').addEventListener('change', () =>
    $('stream-live').checked ? startLive() : showFrom(1, false));
}

/* The poll: the next one POLL_MS after the last answered, so a slow host
 * never has polls piling up. */
async function poll() {
  try {
    await refresh();
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function main() {
  wire();
  showAdmin();
  poll();
}

main();
