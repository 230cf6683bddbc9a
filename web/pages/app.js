// mtask-web's pages: one shell (index.html) for every screen; this script
// picks the screen from the path, reads the JSON API under /api/ and draws
// it with DOM calls only. Data from the database never goes through
// innerHTML or an attribute that runs code: every value is a text node.
'use strict';

(function () {
  // The server may live under a prefix (--base-path): it is whatever comes
  // before /static/app.js in this script's own address.
  const BASE = new URL(document.currentScript.src).pathname.replace(/\/static\/app\.js$/, '');
  const params = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(500, Number(params.get('refresh') || 5) * 1000);

  // ---- relaxed extended JSON --------------------------------------------

  // A scalar of relaxed extended JSON as JavaScript: an ObjectId as its hex
  // text, a date as a Date, a number type as a number.
  function val(v) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      if ('$oid' in v) return String(v.$oid);
      if ('$date' in v) {
        const d = v.$date;
        if (d && typeof d === 'object' && '$numberLong' in d) return new Date(Number(d.$numberLong));
        return new Date(d);
      }
      if ('$numberLong' in v) return Number(v.$numberLong);
      if ('$numberInt' in v) return Number(v.$numberInt);
      if ('$numberDouble' in v) return Number(v.$numberDouble);
      if ('$numberDecimal' in v) return String(v.$numberDecimal);
    }
    return v;
  }

  function isDate(v) { return val(v) instanceof Date; }

  // Extended JSON as plain JSON for showing: ObjectIds and dates as text.
  function plain(v) {
    const s = val(v);
    if (s instanceof Date) return isNaN(s) ? String(v.$date) : s.toISOString();
    if (s !== v) return s;
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v)) o[k] = plain(v[k]);
      return o;
    }
    return v;
  }

  // ---- formatting -------------------------------------------------------

  function fmtDate(v) {
    const d = val(v);
    if (!(d instanceof Date) || isNaN(d)) return v == null ? '' : String(plain(v));
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  // A duration in ms as people read it: 850 ms, 4.2 s, 3m 20s, 2h 5m, 3d 4h.
  function fmtDur(ms) {
    if (ms == null || !isFinite(ms)) return '';
    const neg = ms < 0 ? '-' : '';
    ms = Math.abs(ms);
    if (ms < 1000) return neg + Math.round(ms) + ' ms';
    const s = ms / 1000;
    if (s < 60) return neg + (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
    const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (m < 60) return neg + m + 'm ' + Math.floor(s % 60) + 's';
    if (h < 24) return neg + h + 'h ' + (m % 60) + 'm';
    return neg + d + 'd ' + (h % 24) + 'h';
  }

  function between(a, b) {
    const x = val(a), y = val(b);
    if (!(x instanceof Date) || !(y instanceof Date)) return null;
    // Two clocks may have written the times (an enqueuing client's, the
    // server's): a few ms the wrong way round is no negative wait.
    return Math.max(0, y - x);
  }

  function ago(v) {
    const d = val(v);
    if (!(d instanceof Date) || isNaN(d)) return '';
    const ms = Date.now() - d;
    return ms >= 0 ? fmtDur(ms) + ' ago' : 'in ' + fmtDur(-ms);
  }

  function text(v) {
    if (v == null) return '';
    const s = val(v);
    if (s instanceof Date) return fmtDate(s);
    if (typeof s === 'object') return JSON.stringify(plain(s));
    return String(s);
  }

  // ---- DOM --------------------------------------------------------------

  // h('td', {class: 'num'}, 'text', node, ...): children are text or nodes;
  // attributes are the page's own (class, href built by link()...).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (/^on/i.test(k)) throw new Error('no event attributes: ' + k);
      el.setAttribute(k, v === true ? '' : String(v));
    }
    add(el, kids);
    return el;
  }

  function add(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  // A link to one of the screens: every part of the path is URI-encoded,
  // so a value can never become a scheme (javascript:) or leave the prefix.
  function href(...parts) {
    return BASE + '/' + parts.map((p) => encodeURIComponent(text(p))).join('/');
  }

  function link(label, ...parts) {
    return h('a', { href: href(...parts) }, label);
  }

  function status(s) {
    const t = text(s) || '(none)';
    return h('span', { class: 'status status-' + t.replace(/[^A-Za-z0-9_-]/g, '_') }, t);
  }

  function empty(msg) { return h('p', { class: 'empty' }, msg); }

  // A table from rows: cols are [heading, (row) => content, class].
  function table(cols, rows, emptyMsg) {
    if (!rows || rows.length === 0) return empty(emptyMsg || 'None.');
    return h('table', {},
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c[2] }, c[0])))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', { class: c[2] }, c[1](r)))))));
  }

  // A list the server cut at its limit says so (`more: true` in its reply):
  // a note under the table, "Showing the first 1000 workers; there are more."
  function moreNote(reply, rows, what, hint) {
    if (!reply || reply.more !== true) return null;
    return h('p', { class: 'more muted' }, 'Showing the first ' + count((rows || []).length, what) +
      '; there are more' + (hint ? ': ' + hint : '') + '.');
  }

  // "1 worker", "2 workers"; `what` is [one, many] or a word taking "s".
  function count(n, what) {
    const [one, many] = Array.isArray(what) ? what : [what, what + 's'];
    return n + ' ' + (n === 1 ? one : many);
  }

  // A two-column table of [name, content] pairs, skipping empty contents.
  function fields(pairs) {
    return h('table', { class: 'fields' }, h('tbody', {},
      pairs.filter((p) => p[1] != null && p[1] !== '').map((p) => h('tr', {}, h('th', {}, p[0]), h('td', {}, p[1])))));
  }

  function json(v) { return h('pre', { class: 'json' }, JSON.stringify(plain(v), null, 2)); }

  function dateCell(v) {
    if (v == null) return '';
    return h('span', { title: ago(v) }, fmtDate(v));
  }

  function whenCell(v) {
    if (v == null) return '';
    return [fmtDate(v), ' ', h('span', { class: 'muted' }, '(' + ago(v) + ')')];
  }

  // ---- fetching and refreshing -------------------------------------------

  function api(path, query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) if (v != null && v !== '') q.set(k, String(v));
    const s = q.toString();
    return BASE + '/api/' + path + (s ? '?' + s : '');
  }

  async function fetchJSON(url) {
    let res;
    try {
      res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    } catch (e) {
      throw new Error('the server did not answer (' + e.message + ')');
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      const msg = body && typeof body.error === 'string' ? body.error : res.statusText;
      throw new Error('HTTP ' + res.status + ' from ' + url.replace(BASE, '') + ': ' + msg);
    }
    if (body === null || typeof body !== 'object') throw new Error(url + ' did not return a JSON object');
    return body;
  }

  const banner = () => document.getElementById('banner');
  const readAt = () => document.getElementById('read-at');
  let lastOk = null;

  function showError(err) {
    const b = banner();
    b.replaceChildren(
      'The API failed: ' + err.message + '. ',
      lastOk ? 'Showing the data read at ' + lastOk.toLocaleTimeString() + '; retrying every ' +
        REFRESH_MS / 1000 + ' s.' : 'Retrying every ' + REFRESH_MS / 1000 + ' s.');
    b.hidden = false;
    document.body.classList.add('stale');
  }

  function showOk() {
    banner().hidden = true;
    banner().replaceChildren();
    document.body.classList.remove('stale');
    lastOk = new Date();
    readAt().replaceChildren('read at ' + lastOk.toLocaleTimeString());
    readAt().setAttribute('data-read-at', lastOk.toISOString());
  }

  // One screen: title, the API reads it needs (name -> url), controls drawn
  // once (filters keep what a person types), and render(data) -> nodes,
  // redrawn in place at every refresh.
  let refreshNow = null;

  async function run(screen) {
    document.title = screen.title + ' · mtask';
    document.getElementById('title').replaceChildren(screen.title);
    if (screen.controls) document.getElementById('controls').replaceChildren(...[screen.controls()].flat().filter((n) => n != null));
    let timer = null, busy = null;
    async function read() {
      try {
        const names = Object.keys(screen.reads);
        const replies = await Promise.all(names.map((n) => fetchJSON(screen.reads[n])));
        const data = {};
        names.forEach((n, i) => { data[n] = replies[i]; });
        const nodes = screen.render(data);
        document.getElementById('content').replaceChildren(...[nodes].flat(Infinity).filter((n) => n != null));
        showOk();
      } catch (e) {
        showError(e);
      }
      document.body.setAttribute('data-loaded', String(Number(document.body.getAttribute('data-loaded') || 0) + 1));
    }
    // One read at a time: a refresh asked for during a read waits for it.
    async function tick() {
      if (busy) return busy;
      clearTimeout(timer);
      busy = read();
      await busy;
      busy = null;
      timer = setTimeout(tick, REFRESH_MS);
    }
    refreshNow = tick;
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) tick();
    });
    await tick();
  }

  // ---- actions ----------------------------------------------------------
  //
  // Shown only when GET /api/csrf says the server takes them (--allow-actions,
  // and a token or a loopback listener). Each is a POST of a JSON body with
  // the X-CSRF-Token header; its outcome, or the server's message, goes into
  // the notice under the header as text, and the screen reads its data again.

  let csrf = '', actionsAllowed = false;

  async function loadActions() {
    try {
      const r = await fetchJSON(api('csrf'));
      csrf = typeof r.csrf === 'string' ? r.csrf : '';
      actionsAllowed = r.actions === true && csrf !== '';
    } catch (e) {
      actionsAllowed = false;
    }
    document.body.setAttribute('data-actions', String(actionsAllowed));
  }

  function notice(message, bad) {
    const n = document.getElementById('notice');
    n.replaceChildren(message);
    n.classList.toggle('notice-bad', !!bad);
    n.hidden = false;
  }

  async function post(name, body) {
    let res;
    try {
      res = await fetch(BASE + '/api/action/' + encodeURIComponent(name), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new Error('the server did not answer (' + e.message + ')');
    }
    let reply = null;
    try { reply = await res.json(); } catch (e) { reply = null; }
    if (!res.ok) {
      throw new Error('HTTP ' + res.status + ': ' + (reply && typeof reply.error === 'string' ? reply.error : res.statusText));
    }
    return reply && typeof reply === 'object' ? reply : {};
  }

  // A button running `fn` (which returns what to say, or throws); disabled
  // while it runs; the screen is read again after.
  function actionButton(label, fn) {
    const b = h('button', { type: 'button', class: 'action', 'data-action': label }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const said = await fn();
        if (said) notice(said, false);
      } catch (e) {
        notice(label + ' failed: ' + e.message, true);
      } finally {
        b.disabled = false;
        if (refreshNow) refreshNow();
      }
    });
    return b;
  }

  // The buttons in a row, or nothing when actions are not allowed.
  function actionBar(...buttons) {
    const bs = buttons.flat().filter(Boolean);
    if (!actionsAllowed || !bs.length) return null;
    return h('div', { class: 'actions' }, bs);
  }

  const ENDED = new Set(['FINISHED', 'FAILED', 'CANCELLED']);

  // A task action's reply ({done, refused, tasks: [{outcome, reason}]}) as
  // a sentence.
  function outcome(verb, reply) {
    const ts = reply.tasks || [];
    const refused = ts.filter((t) => text(t.outcome) === 'refused');
    const reasons = [...new Set(refused.map((t) => text(t.reason)).filter(Boolean))].slice(0, 3);
    let s = verb + ': ' + text(reply.done ?? 0) + ' done';
    if (refused.length) s += ', ' + refused.length + ' refused' + (reasons.length ? ' (' + reasons.join('; ') + ')' : '');
    return s + '.';
  }

  // "37 FAILED tasks of queue 'mail'" for a filter.
  function tasksOf(n, f) {
    return n + ' ' + (f.status ? f.status + ' ' : '') + (n === 1 ? 'task' : 'tasks') +
      (f.queue ? " of queue '" + f.queue + "'" : '') + (f.type ? " of type '" + f.type + "'" : '');
  }

  // Every task a filter matches: a dry run counts them, confirm() names the
  // count, then the action itself (delete with force: the dry run counted
  // the live ones too, and the question says how many).
  async function bulk(name, verb, filter) {
    const extra = name === 'delete' ? { force: true } : {};
    const dry = await post(name, Object.assign({}, filter, extra, { dry_run: true }));
    const n = Number(val(dry.done)) || 0, refused = Number(val(dry.refused)) || 0;
    if (n === 0) {
      return verb + ': no task matching this filter can be ' + (refused ? '(' + refused + ' would be refused)' : '(none matches)') + '.';
    }
    const live = name === 'delete' ? (dry.tasks || []).filter((t) => text(t.outcome) !== 'refused' && !ENDED.has(text(t.status))).length : 0;
    let question = verb + ' ' + tasksOf(n, filter) + '?';
    if (live) question += ' ' + live + ' of them ' + (live === 1 ? 'has' : 'have') + ' not ended (waiting or running).';
    if (refused) question += ' ' + refused + ' more match but would be refused.';
    if (!window.confirm(question)) return verb + ': not confirmed, nothing done.';
    return outcome(verb, await post(name, Object.assign({}, filter, extra)));
  }

  // The actions on one task, as its status allows.
  function taskActions(t) {
    const id = text(t._id), st = text(t.status);
    const one = (verb, reply) => outcome(verb + ' task ' + id, reply);
    return actionBar(
      st === 'FAILED' || st === 'CANCELLED'
        ? actionButton('Retry', async () => one('Retry', await post('retry', { id }))) : null,
      st === 'CREATED' || st === 'WAITING' || st === 'WORK_IN_PROGRESS'
        ? actionButton('Cancel', async () => {
          if (!window.confirm('Cancel task ' + id + ' (' + st + ')?')) return 'Cancel: not confirmed, nothing done.';
          return one('Cancel', await post('cancel', { id }));
        }) : null,
      st === 'WORK_IN_PROGRESS' && t.slot != null && text(t.slot) !== ''
        ? actionButton('Stop (slot)', async () => {
          if (!window.confirm('Stop task ' + id + ' and free its slot ' + text(t.slot) + '?')) return 'Stop: not confirmed, nothing done.';
          await post('slot-stop', { id });
          return 'Task ' + id + ': stop requested; its slot is freed.';
        }) : null,
      actionButton('Delete', async () => {
        const ended = ENDED.has(st);
        if (!window.confirm(ended ? 'Delete task ' + id + '?' : 'Task ' + id + ' is ' + st + ', not ended: delete it anyway?')) {
          return 'Delete: not confirmed, nothing done.';
        }
        const reply = await post('delete', ended ? { id } : { id, force: true });
        if ((Number(val(reply.done)) || 0) > 0) {
          location.assign(BASE + '/tasks');
        }
        return one('Delete', reply);
      }));
  }

  // ---- screens ----------------------------------------------------------

  const RATE_W = 600, RATE_H = 140;

  // Throughput and failures per minute, drawn as two polylines in SVG.
  function chart(points) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('class', 'chart');
    svg.setAttribute('viewBox', '0 0 ' + RATE_W + ' ' + RATE_H);
    svg.setAttribute('width', String(RATE_W));
    svg.setAttribute('height', String(RATE_H));
    svg.setAttribute('role', 'img');
    const max = Math.max(1, ...points.map((p) => Math.max(Number(val(p.finished)) || 0, Number(val(p.failed)) || 0)));
    const pad = 22, w = RATE_W - pad - 4, hgt = RATE_H - 2 * pad;
    const x = (i) => pad + (points.length > 1 ? (i * w) / (points.length - 1) : w / 2);
    const y = (n) => pad + hgt - (hgt * n) / max;
    const line = (key, cls) => {
      const pl = document.createElementNS(NS, 'polyline');
      pl.setAttribute('class', cls);
      pl.setAttribute('points', points.map((p, i) => x(i).toFixed(1) + ',' + y(Number(val(p[key])) || 0).toFixed(1)).join(' '));
      return pl;
    };
    const axis = document.createElementNS(NS, 'path');
    axis.setAttribute('class', 'axis');
    axis.setAttribute('d', 'M' + pad + ' ' + pad + ' V' + (pad + hgt) + ' H' + (pad + w));
    const label = (tx, ty, s) => {
      const t = document.createElementNS(NS, 'text');
      t.setAttribute('x', String(tx));
      t.setAttribute('y', String(ty));
      t.textContent = s;
      return t;
    };
    svg.append(axis, line('finished', 'done'), line('failed', 'failed'),
      label(2, pad + 4, String(max)), label(2, pad + hgt, '0'));
    if (points.length) {
      svg.append(label(pad, RATE_H - 4, fmtDate(points[0].minute)),
        label(pad + w - 120, RATE_H - 4, fmtDate(points[points.length - 1].minute)));
    }
    return svg;
  }

  function overview() {
    return {
      title: 'Overview',
      reads: { stats: api('overview'), workers: api('workers') },
      render({ stats, workers }) {
        const ws = workers.workers || [];
        const byState = {};
        for (const w of ws) byState[text(w.state)] = (byState[text(w.state)] || 0) + 1;
        const alive = (byState.running || 0) + (byState.quiet || 0) + (byState.stopping || 0);
        const backlog = stats.backlog || [];
        const sum = (k) => backlog.reduce((a, r) => a + (Number(val(r[k])) || 0), 0);
        const tp = stats.throughput || [];
        const perMin = (k) => tp.reduce((a, p) => a + (Number(val(p[k])) || 0), 0);
        const out = [
          h('div', { class: 'cards' },
            h('div', { class: 'card', id: 'workers-alive' }, h('div', { class: 'big' }, String(alive)), 'workers alive',
              h('div', { class: 'muted' }, Object.keys(byState).sort().map((s) => s + ' ' + byState[s]).join(', ')),
              workers.more === true ? h('div', { class: 'muted more' }, 'of the first ' + ws.length + ' in the registry; there are more') : null),
            h('div', { class: 'card' }, h('div', { class: 'big' }, String(sum('due'))), 'due'),
            h('div', { class: 'card' }, h('div', { class: 'big' }, String(sum('running'))), 'running'),
            h('div', { class: 'card' }, h('div', { class: 'big' }, String(sum('retrying'))), 'retrying')),
          h('h2', {}, 'Queues'),
          table([
            ['queue', (r) => h('a', { href: BASE + '/tasks?' + new URLSearchParams({ queue: text(r.queue) }) }, text(r.queue))],
            ['due', (r) => text(r.due), 'num'],
            ['delayed', (r) => text(r.delayed), 'num'],
            ['retrying', (r) => text(r.retrying), 'num'],
            ['running', (r) => text(r.running), 'num'],
            ['failed, last hour', (r) => r.failed_last_hour == null ? '' : text(r.failed_last_hour), 'num'],
            ['oldest due', (r) => r.oldest_due_age_ms == null ? '' : fmtDur(Number(val(r.oldest_due_age_ms))), 'num'],
          ], backlog, 'No queue has tasks waiting or running.'),
          h('h2', {}, 'Throughput, last hour'),
        ];
        if (tp.length) {
          out.push(h('p', {}, h('span', { class: 'legend-done' }, 'finished'), ' ' + perMin('finished') + ', ',
            h('span', { class: 'legend-failed' }, 'failed'), ' ' + perMin('failed') + ' in the last hour; per minute:'), chart(tp));
        } else {
          out.push(empty('The API reports no throughput per minute.'));
        }
        const unserved = stats.unserved_types || [];
        const uq = stats.unserved_queues || [];
        out.push(h('h2', {}, 'Unserved'),
          uq.length ? h('p', { id: 'unserved-queues' }, 'Queues no running worker takes: ',
            uq.map((q, i) => [i ? ', ' : '', status('unserved'), ' ', text(q)])) : null,
          table([['queue', (r) => text(r.queue)], ['type no live worker serves', (r) => text(r.type)]],
            unserved, 'Every waiting task has a live worker with its plugin.'));
        const bq = stats.by_queue || [];
        const sts = stats.statuses || [];
        if (bq.length) {
          const queues = [...new Set(bq.map((r) => text(r.queue)))];
          const n = (q, s) => { const r = bq.find((x) => text(x.queue) === q && text(x.status) === s); return r ? text(r.n) : ''; };
          out.push(h('h2', {}, 'Tasks by queue and status'),
            table([['queue', (q) => q]].concat(sts.map((s) => [text(s), (q) => n(q, text(s)), 'num'])), queues));
        }
        return out;
      },
    };
  }

  const TASK_FILTERS = ['queue', 'status', 'type', 'worker', 'q'];
  const TASKS_SKIP_MAX = 100000; // the deepest `skip` /api/tasks takes
  const STATUSES = ['', 'WAITING', 'CREATED', 'WORK_IN_PROGRESS', 'FINISHED', 'FAILED', 'CANCELLED'];

  function tasks() {
    const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
    const size = Math.min(500, Math.max(1, parseInt(params.get('size') || '50', 10) || 50));
    const archive = params.get('archive') === 'true' || params.get('archive') === '1';
    // The server filters and pages: newest first by _id, `skip` the pages
    // before this one, `limit` one page; its `more` says whether there is a
    // next page.
    const skip = (page - 1) * size;
    const query = { archive: archive ? 'true' : null, skip, limit: size };
    for (const k of TASK_FILTERS) query[k] = params.get(k);
    const pageLink = (p) => {
      const q = new URLSearchParams(params);
      q.set('page', String(p));
      return BASE + '/tasks?' + q;
    };
    // Retry, cancel or delete every task the filter matches: queue, status
    // and type, what the action calls take; not with the worker or text
    // filter set, which the action calls do not take: the action would
    // reach tasks the screen does not show.
    const bulkActions = () => {
      if (!actionsAllowed) return null;
      const filter = {};
      for (const k of ['queue', 'status', 'type']) if (params.get(k)) filter[k] = params.get(k);
      if (params.get('worker') || params.get('q')) {
        return h('p', { class: 'muted actions' }, 'Actions on every match take queue, status and type only: clear the worker and id/message filters to use them.');
      }
      if (!Object.keys(filter).length) {
        return h('p', { class: 'muted actions' }, 'Filter by queue, status or type to retry, cancel or delete every match.');
      }
      const said = Object.keys(filter).map((k) => k + ' ' + filter[k]).join(', ');
      return h('div', { class: 'actions' }, 'Every task with ' + said + ': ',
        actionButton('Retry all', () => bulk('retry', 'Retry', filter)),
        actionButton('Cancel all', () => bulk('cancel', 'Cancel', filter)),
        actionButton('Delete all', () => bulk('delete', 'Delete', filter)));
    };
    return {
      title: archive ? 'Tasks (archive)' : 'Tasks',
      reads: { tasks: api('tasks', query) },
      controls() {
        const form = h('form', { class: 'filters', method: 'get', action: BASE + '/tasks' });
        for (const k of TASK_FILTERS) {
          const input = k === 'status'
            ? h('select', { name: k }, STATUSES.map((s) => h('option', { value: s, selected: params.get(k) === s && s !== '' }, s || 'any')))
            : h('input', { name: k, value: params.get(k) || '', size: 14 });
          form.append(h('label', {}, k === 'q' ? 'id or message' : k, input));
        }
        form.append(h('label', {}, 'archive', h('input', { type: 'checkbox', name: 'archive', value: 'true', checked: archive })),
          h('button', { type: 'submit' }, 'Filter'));
        return [form, bulkActions()];
      },
      render({ tasks: reply }) {
        const rows = reply.tasks || [];
        const more = reply.more === true;
        // The server pages at most TASKS_SKIP_MAX deep: past it, narrowing
        // the filter is the way to older tasks.
        const deeper = page * size <= TASKS_SKIP_MAX;
        return [
          table([
            ['id', (t) => link(text(t._id), 'task', t._id)],
            ['queue', (t) => text(t.queue)],
            ['type', (t) => text(t.type)],
            ['status', (t) => status(t.status)],
            ['attempts', (t) => text(t.attempts), 'num'],
            ['created', (t) => dateCell(t.created)],
            ['ran', (t) => fmtDur(between(t.started, t.finished)), 'num'],
            ['worker', (t) => text(t.worker_pid)],
            ['message', (t) => t.error ? text(t.error.message) : text(t.status_message)],
          ], rows, page > 1 ? 'No task on this page: the list ends before it.' : 'No task matches.'),
          h('div', { class: 'pager' },
            page > 1 ? h('a', { href: pageLink(page - 1), rel: 'prev' }, '← newer') : null,
            h('span', { class: 'muted' }, 'page ' + page + ', newest first'),
            more && deeper ? h('a', { href: pageLink(page + 1), rel: 'next' }, 'older →') : null,
            more && !deeper ? h('span', { class: 'muted more' }, 'older tasks are not paged this deep: narrow the filter') : null),
        ];
      },
    };
  }

  // The fields the task screen shows in its own places; the rest are
  // listed under "Other fields".
  const TASK_SHOWN = new Set(['_id', 'status', 'queue', 'type', 'priority', 'attempts', 'failures', 'max_attempts',
    'worker_pid', 'last_worker', 'created', 'delayed', 'started', 'finished', 'heartbeat', 'status_message', 'params', 'result',
    'error', 'errors', 'series', 'next', 'group', 'stage', 'accounts', 'pool', 'slot', 'repeat', 'cron', 'timezone',
    'scheduled', 'unique_key', 'verbose_name', 'creator']);

  function task(id) {
    return {
      title: 'Task ' + id,
      reads: { task: api('task/' + encodeURIComponent(id)) },
      render({ task: reply }) {
        const t = reply.task || {};
        const waitedFrom = t.delayed && isDate(t.delayed) && val(t.delayed) > val(t.created) ? t.delayed : t.created;
        const waited = between(waitedFrom, t.started);
        const ran = between(t.started, t.finished || (text(t.status) === 'WORK_IN_PROGRESS' ? { $date: new Date().toISOString() } : null));
        const out = [
          taskActions(t),
          fields([
            ['status', status(t.status)],
            ['collection', text(reply.collection)],
            ['queue', text(t.queue)],
            ['type', text(t.type)],
            ['status message', text(t.status_message)],
            ['attempts', text(t.attempts) + (t.max_attempts != null ? ' (failures ' + text(t.failures ?? 0) + ' of ' + text(t.max_attempts) + ')' : '')],
            ['priority', text(t.priority)],
            ['worker', text(t.worker_pid) ? link(text(t.worker_pid), 'workers')
              : (text(t.last_worker) ? ['ran on ', h('a', { href: BASE + '/tasks?' + new URLSearchParams({ worker: text(t.last_worker) }) }, text(t.last_worker))] : '')],
            ['created', t.created ? whenCell(t.created) : ''],
            ['delayed', t.delayed ? whenCell(t.delayed) : ''],
            ['started', t.started ? [whenCell(t.started), waited != null ? ' · waited ' + fmtDur(waited) : ''] : ''],
            ['finished', t.finished ? [whenCell(t.finished), ran != null ? ' · ran ' + fmtDur(ran) : ''] : (ran != null ? 'running for ' + fmtDur(ran) : '')],
            ['heartbeat', t.heartbeat ? whenCell(t.heartbeat) : ''],
            ['repeats', t.repeat != null ? 'every ' + text(t.repeat) + ' s' : (t.cron ? "cron '" + text(t.cron) + "' (" + (text(t.timezone) || 'UTC') + ')' : '')],
            ['scheduled', t.scheduled ? whenCell(t.scheduled) : ''],
            ['series', t.series ? link(text(t.series), 'task', t.series) : ''],
            ['previous run', reply.previous ? [link(text(reply.previous._id), 'task', reply.previous._id), ' · ' + text(reply.previous.status)]
              : (reply.previous === null ? 'none: the first of its series' : '')],
            ['next run', t.next ? link(text(t.next._id), 'task', t.next._id) : (t.next === null ? 'none: the series ended' : '')],
            ['group', t.group ? [link(text(t.group), 'group', t.group), t.stage != null ? ', stage ' + text(t.stage) : ''] : ''],
            ['account locks', Array.isArray(t.accounts) ? t.accounts.map(text).join(', ') : ''],
            ['pool', text(t.pool) ? link(text(t.pool), 'pools') : ''],
            ['slot', text(t.slot)],
            ['unique key', text(t.unique_key)],
            ['name', text(t.verbose_name)],
            ['creator', text(t.creator)],
          ]),
        ];
        if (t.error) {
          out.push(h('h2', {}, 'Error'),
            h('div', { class: 'error', id: 'task-error' }, h('strong', {}, text(t.error.message)),
              h('div', { class: 'muted' }, 'domain ' + text(t.error.domain) + ', code ' + text(t.error.code))));
        }
        if (Array.isArray(t.errors) && t.errors.length) {
          out.push(h('h2', {}, 'Errors, last five'), table([
            ['attempt', (e) => text(e.attempt), 'num'],
            ['at', (e) => dateCell(e.at)],
            ['domain', (e) => text(e.domain), 'num'],
            ['code', (e) => text(e.code), 'num'],
            ['message', (e) => text(e.message)],
          ], t.errors));
        }
        out.push(h('h2', {}, 'Params'), t.params == null ? empty('None.') : json(t.params));
        out.push(h('h2', {}, 'Result'), t.result == null ? empty('None.') : json(t.result));
        const other = Object.keys(t).filter((k) => !TASK_SHOWN.has(k));
        if (other.length) out.push(h('h2', {}, 'Other fields'), fields(other.map((k) => [k, text(t[k])])));
        return out;
      },
    };
  }

  // Stages done of a group: those before its current stage (numbered from
  // 1), or all when none is current (every stage complete).
  function stagesDone(g) {
    const n = Number(val(g.stage_count)) || 0;
    if (g.current_stage == null) return n;
    return Math.min(n, Math.max(0, Number(val(g.current_stage)) - 1));
  }

  function groups() {
    return {
      title: 'Groups',
      reads: { groups: api('groups') },
      render({ groups: reply }) {
        return [table([
          ['group', (g) => link(text(g._id), 'group', g._id)],
          ['description', (g) => text(g.description)],
          ['created', (g) => dateCell(g.created)],
          ['status', (g) => status(g.status)],
          ['stages', (g) => stagesDone(g) + '/' + text(g.stage_count) + ' stages'],
          ['current stage', (g) => g.current_stage == null ? '' : text(g.current_stage), 'num'],
        ], reply.groups, 'No staged group.'), moreNote(reply, reply.groups, 'group')];
      },
    };
  }

  function group(id) {
    return {
      title: 'Group ' + id,
      reads: { group: api('group/' + encodeURIComponent(id)) },
      render({ group: reply }) {
        const g = reply.group || {};
        const sts = reply.statuses || [];
        return [
          text(g.status) === 'complete' ? null : actionBar(actionButton('Start', async () => {
            await post('group-start', { id: text(g._id) || id });
            return 'Group ' + id + ': its first stage not complete is started.';
          })),
          fields([
            ['description', text(g.description)],
            ['status', status(g.status)],
            ['created', g.created ? whenCell(g.created) : ''],
            ['completed', g.completed ? whenCell(g.completed) : ''],
            ['kept until', g.keep_until ? whenCell(g.keep_until) : ''],
          ]),
          h('h2', {}, 'Stages'),
          table([
            ['stage', (s) => s._id ? link(text(s.number), 'stage', s._id) : text(s.number), 'num'],
            ['status', (s) => s.missing ? status('missing') : status(s.status)],
            ['done', (s) => [h('progress', { max: text(s.total) || 0, value: text(s.done) || 0 }), ' ' + text(s.done) + ' / ' + text(s.total)]],
            ['started', (s) => dateCell(s.started)],
            ['completed', (s) => dateCell(s.completed)],
            ['took', (s) => fmtDur(between(s.started, s.completed)), 'num'],
          ].concat(sts.map((st) => [text(st), (s) => text((s.tasks || {})[text(st)] ?? ''), 'num'])), reply.stages, 'No stage.'),
        ];
      },
    };
  }

  // /stage/ID: a staged group's stage, its group and a page of its tasks
  // (the jobs), or a synchronizer's stage (a reply without `group`).
  // `?limit=N` (1 to 1000, the server's default 200) asks for more jobs.
  const STAGE_JOBS_MAX = 1000;

  function stage(id) {
    const asked = parseInt(params.get('limit') || '', 10);
    const limit = asked > 0 ? Math.min(STAGE_JOBS_MAX, asked) : null;
    return {
      title: 'Stage ' + id,
      reads: { stage: api('stage/' + encodeURIComponent(id), { limit }) },
      render({ stage: reply }) {
        const s = reply.stage || {};
        const g = reply.group || (s.group != null ? { _id: s.group } : null);
        if (g == null) {
          return fields([
            ['name', text(s.name)],
            ['queue', text(s.queue)],
            ['callable', text(s.callable)],
            ['task', text(s.task)],
            ['next stage', s.next_stage ? link(text(s.next_stage), 'stage', s.next_stage) : 'none: the last'],
            ['params', s.params == null ? '' : json(s.params)],
          ]);
        }
        const jobs = reply.tasks || [];
        const counts = s.tasks && typeof s.tasks === 'object' ? s.tasks : {};
        const total = Object.values(counts).reduce((a, n) => a + (Number(val(n)) || 0), 0);
        const shown = jobs.length;
        const more = reply.more === true;
        const wider = new URLSearchParams(params);
        wider.set('limit', String(STAGE_JOBS_MAX));
        return [
          fields([
            ['group', [link(text(g.description) || text(g._id), 'group', g._id),
              text(g.description) ? h('span', { class: 'muted' }, ' (' + text(g._id) + ')') : null]],
            ['group status', g.missing ? 'the group is gone' : (g.status != null ? status(g.status) : '')],
            ['number', text(s.number)],
            ['status', status(s.status)],
            ['done', text(s.done) + ' of ' + text(s.total)],
            ['started', s.started ? whenCell(s.started) : ''],
            ['completed', s.completed ? whenCell(s.completed) : ''],
            ['tasks', Object.keys(counts).map((k) => text(k) + ' ' + text(counts[k])).join(', ')],
          ]),
          h('h2', {}, 'Jobs'),
          table([
            ['task', (t) => link(text(t._id), 'task', t._id)],
            ['type', (t) => text(t.type)],
            ['status', (t) => status(t.status)],
            ['attempts', (t) => text(t.attempts), 'num'],
            ['message', (t) => t.error ? text(t.error.message) : text(t.status_message)],
            ['started', (t) => dateCell(t.started)],
            ['finished', (t) => dateCell(t.finished)],
            ['ran', (t) => fmtDur(between(t.started, t.finished)), 'num'],
          ], jobs, 'No task in this stage.'),
          more ? h('p', { class: 'more muted' }, 'Showing the first ' + count(shown, 'job') +
            (total > shown ? ' of ' + total : '') + ', oldest first; there are more. ',
          shown < STAGE_JOBS_MAX ? h('a', { href: BASE + '/stage/' + encodeURIComponent(id) + '?' + wider, rel: 'next' },
            'Show up to ' + STAGE_JOBS_MAX + ' jobs') : null) : null,
        ];
      },
    };
  }

  function syncs() {
    return {
      title: 'Synchronizers',
      reads: { syncs: api('syncs') },
      render({ syncs: reply }) {
        return [table([
          ['name', (s) => text(s.name ?? s._id)],
          ['status', (s) => status(s.status)],
          ['current stage', (s) => s.actual_stage ? link(text(s.actual_stage_name) || text(s.actual_stage), 'stage', s.actual_stage) : ''],
          ['start stage', (s) => s.start_stage ? link(text(s.start_stage_name) || text(s.start_stage), 'stage', s.start_stage) : ''],
          ['stage task', (s) => s.stage_task ? link(text(s.stage_task), 'task', s.stage_task) : ''],
          ['closing', (s) => s.closing ? link(text(s.closing), 'task', s.closing) : ''],
        ].concat(actionsAllowed ? [['', (s) => text(s.status) === 'running' ? '' : actionBar(actionButton('Start', async () => {
          const name = text(s.name ?? s._id);
          await post('sync-start', { id: name });
          return "Synchronizer '" + name + "': the workers begin it at their next upkeep tick.";
        }))]] : []), reply.synchronizers, 'No synchronizer.'), moreNote(reply, reply.synchronizers, 'synchronizer')];
      },
    };
  }

  // Quiet (take nothing new, stay up) and stop, for a worker still up.
  function workerActions(w) {
    const id = text(w._id), state = text(w.state);
    if (state !== 'running' && state !== 'quiet') return '';
    return actionBar(
      state === 'running' ? actionButton('Quiet', async () => {
        await post('worker-quiet', { id });
        return "Worker '" + id + "': asked to be quiet; it follows at its next heartbeat.";
      }) : null,
      actionButton('Stop', async () => {
        if (!window.confirm("Stop worker '" + id + "'? Its running tasks get their grace, then go back to the queue.")) {
          return 'Stop: not confirmed, nothing done.';
        }
        await post('worker-stop', { id });
        return "Worker '" + id + "': asked to stop; it follows at its next heartbeat.";
      }));
  }

  function workers() {
    return {
      title: 'Workers',
      reads: { workers: api('workers') },
      render({ workers: reply }) {
        return [table([
          ['worker', (w) => h('a', { href: BASE + '/tasks?' + new URLSearchParams({ worker: text(w._id) }) }, text(w._id))],
          ['state', (w) => status(w.state)],
          ['host', (w) => text(w.host)],
          ['pid', (w) => text(w.pid), 'num'],
          ['queues', (w) => Array.isArray(w.queues) ? w.queues.map(text).join(', ') : text(w.queues)],
          ['concurrency', (w) => text(w.concurrency), 'num'],
          ['heartbeat', (w) => w.heartbeat_age_ms == null ? '' : fmtDur(Number(val(w.heartbeat_age_ms))) + ' ago', 'num'],
          ['running now', (w) => (w.running || []).map((t, i) => [i ? h('br') : null,
            link(text(t.type) + ' ' + text(t._id), 'task', t._id), ' ',
            h('span', { class: 'muted' }, '(' + text(t.queue) + (t.started ? ', started ' + ago(t.started) : '') + ')')])],
        ].concat(actionsAllowed ? [['', (w) => workerActions(w)]] : []), reply.workers, 'No worker in the registry.'),
        moreNote(reply, reply.workers, 'worker')];
      },
    };
  }

  function locks() {
    return {
      title: 'Locks',
      reads: { locks: api('locks') },
      render({ locks: reply }) {
        return [table([
          ['account', (l) => text(l._id)],
          ['state', (l) => status(l.state)],
          ['task', (l) => l.task ? link(text(l.task), 'task', l.task) : ''],
          ['worker', (l) => text(l.worker_pid)],
          ['attempt', (l) => text(l.attempt), 'num'],
          ['since', (l) => whenCell(l.acquired)],
        ], reply.locks, 'No account is locked.'), moreNote(reply, reply.locks, 'lock')];
      },
    };
  }

  function slotTable(slots) {
    return table([
      ['slot', (s) => text(s.index ?? s._id), 'num'],
      ['task', (s) => s.task ? link(text(s.task), 'task', s.task) : ''],
      ['worker', (s) => text(s.worker_pid)],
      ['since', (s) => whenCell(s.acquired ?? s.started)],
      ['keepalive', (s) => s.keepalive ? ago(s.keepalive) : ''],
      ['', (s) => s.beyond_size ? status('beyond size') : ''],
    ].concat(actionsAllowed ? [['', (s) => s.task ? actionBar(actionButton('Stop', async () => {
      const id = text(s.task);
      if (!window.confirm('Stop task ' + id + ' and free its slot?')) return 'Stop: not confirmed, nothing done.';
      await post('slot-stop', { id });
      return 'Task ' + id + ': stop requested; its slot is freed.';
    })) : '']] : []), slots, 'No slot held.');
  }

  function pools() {
    return {
      title: 'Pools and slots',
      reads: { slots: api('slots') },
      render({ slots: reply }) {
        const out = [];
        for (const p of reply.pools || []) {
          out.push(h('h2', {}, text(p._id) + ': ' + text(p.in_use) + ' of ' + text(p.size) + ' slots in use',
            p.timeout_seconds != null ? h('span', { class: 'muted' }, ' · timeout ' + text(p.timeout_seconds) + ' s') : null),
          slotTable(p.slots));
        }
        if (!out.length) out.push(empty('No pool.'));
        if (reply.more === true) {
          const held = (reply.pools || []).reduce((a, p) => a + (p.slots || []).length, 0) + (reply.undeclared || []).length;
          out.push(h('p', { class: 'more muted' }, 'Showing the first ' + count((reply.pools || []).length, 'pool') + ' and ' +
            count(held, 'held slot') + '; there are more.'));
        }
        if ((reply.undeclared || []).length) {
          out.push(h('h2', {}, 'Slots of undeclared pools'), table([
            ['pool', (s) => text(s.pool)], ['slot', (s) => text(s.index ?? s._id)],
            ['task', (s) => s.task ? link(text(s.task), 'task', s.task) : ''], ['worker', (s) => text(s.worker_pid)],
          ], reply.undeclared));
        }
        return out;
      },
    };
  }

  function schedules() {
    return {
      title: 'Schedules',
      reads: { schedules: api('schedules', { queue: params.get('queue') }) },
      render({ schedules: reply }) {
        return [table([
          ['task', (t) => link(text(t.verbose_name) || text(t._id), 'task', t._id)],
          ['queue', (t) => text(t.queue)],
          ['type', (t) => text(t.type)],
          ['rule', (t) => text(t.rule)],
          ['next run', (t) => t.next_run == null ? 'due now' : whenCell(t.next_run)],
          ['status', (t) => status(t.status)],
          ['series', (t) => t.series ? link(text(t.series), 'task', t.series) : ''],
          ['last outcome', (t) => t.error ? 'failed: ' + text(t.error.message) : (Number(val(t.attempts)) > 0 && text(t.status) === 'CREATED' ? 'retrying' : '')],
        ], reply.schedules, 'No repeating task.'), moreNote(reply, reply.schedules, 'repeating task', 'filter by queue')];
      },
    };
  }

  function notFound(path) {
    return {
      title: 'Not found',
      reads: {},
      render() { return h('p', {}, 'No screen at ' + path + '.'); },
    };
  }

  const routes = [
    [/^\/$/, overview], [/^\/tasks$/, tasks], [/^\/task\/([^/]+)$/, task],
    [/^\/groups$/, groups], [/^\/group\/([^/]+)$/, group], [/^\/stage\/([^/]+)$/, stage],
    [/^\/syncs$/, syncs], [/^\/workers$/, workers], [/^\/locks$/, locks],
    [/^\/pools$/, pools], [/^\/schedules$/, schedules],
  ];

  function main() {
    let path = location.pathname;
    if (BASE && path.startsWith(BASE)) path = path.slice(BASE.length);
    path = path.replace(/\/index\.html$/, '/').replace(/(.)\/$/, '$1') || '/';
    for (const a of document.querySelectorAll('a[data-nav]')) {
      const brand = a.classList.contains('brand');
      a.setAttribute('href', BASE + a.getAttribute('data-nav'));
      const nav = a.getAttribute('data-nav');
      if (!brand && (nav === path || (nav !== '/' && path.startsWith(nav.replace(/s$/, ''))))) a.classList.add('current');
    }
    let screen = null;
    for (const [re, make] of routes) {
      const m = path.match(re);
      if (m) { screen = make(...m.slice(1).map(decodeURIComponent)); break; }
    }
    loadActions().then(() => run(screen || notFound(path)));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
})();
