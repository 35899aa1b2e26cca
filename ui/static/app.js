// The Pemba access explorer. Every page is a URL under /ui/ that an analyst
// can paste into a ticket; a page reads at the revision in its `at`
// parameter (a zookie) or at the head. The page calls the HTTP/JSON API on
// its own origin with the bearer token kept in sessionStorage.
//
// User data — IDs, reasons, labels, caveat context, schema comments — is
// only ever inserted as text (textContent, attribute values), never as
// markup.

const TOKEN_KEY = 'pemba.token';
const RECENT_KEY = 'pemba.recent';
const PAGE_SIZE = 100;
const SOON_MS = 7 * 24 * 3600 * 1000;
const SVG_NS = 'http://www.w3.org/2000/svg';

const params = new URLSearchParams(location.search);
const route = location.pathname.replace(/^\/ui\/?/, '');

// --- DOM helpers ----------------------------------------------------------

// h builds an element: attrs sets attributes (on: handlers), children are
// nodes or strings (inserted as text).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const main = () => document.getElementById('main');

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes.flat().filter(Boolean));
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
}

// --- URLs -----------------------------------------------------------------

// pageURL builds a /ui/ URL, keeping the current revision unless at is given.
function pageURL(path, query = {}, at = params.get('at')) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  if (at) q.set('at', at);
  const qs = q.toString();
  return '/ui/' + path + (qs ? '?' + qs : '');
}

const objectText = (o) => `${o.type}:${o.id}`;
function subjectText(sub) {
  return objectText(sub.object) + (sub.relation ? '#' + sub.relation : '');
}
const resourceURL = (o) => pageURL('resource/' + encodeURIComponent(objectText(o)));
const subjectURL = (sub) => pageURL('subject/' + encodeURIComponent(subjectText(sub)));

function objectLink(o) {
  return h('a', { href: resourceURL(o), class: 'mono' }, objectText(o));
}
function subjectLink(sub) {
  if (sub.object.id === '*') return h('span', { class: 'mono' }, subjectText(sub));
  return h('a', { href: subjectURL(sub), class: 'mono' }, subjectText(sub));
}

// parseObject reads "type:id"; parseSubject "type:id" or "type:id#relation".
function parseObject(text) {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) throw new Error(`"${text}" is not an object: want type:id`);
  return { type: text.slice(0, i), id: text.slice(i + 1) };
}
function parseSubject(text) {
  const hash = text.lastIndexOf('#');
  if (hash > text.indexOf(':') && hash > 0) {
    return { object: parseObject(text.slice(0, hash)), relation: text.slice(hash + 1) };
  }
  return { object: parseObject(text) };
}

function relationshipText(r) {
  let t = `${objectText(r.resource)}#${r.relation}@${subjectText(r.subject)}`;
  if (r.caveat) t += `[${r.caveat.name}${r.caveat.context ? ':' + JSON.stringify(r.caveat.context) : ''}]`;
  if (r.expiration) t += `[expiration:${r.expiration}]`;
  return t;
}

// --- API ------------------------------------------------------------------

class Unauthenticated extends Error {}

function consistency() {
  const at = params.get('at');
  return at ? { atExactSnapshot: { token: at } } : { fullyConsistent: true };
}

async function post(path, body, token = sessionStorage.getItem(TOKEN_KEY)) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body || {}), credentials: 'omit' });
  const text = await res.text();
  if (res.status === 401) throw new Unauthenticated('sign in: the server wants a valid token');
  if (!res.ok) {
    let msg = res.statusText;
    try { msg = JSON.parse(text).message || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return text;
}

const unary = async (path, body) => JSON.parse(await post(path, body));

// stream reads a server-streaming RPC's newline-delimited answers.
async function stream(path, body) {
  const text = await post(path, body);
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    if (msg.error) throw new Error(msg.error.message || 'the stream failed');
    out.push(msg.result);
  }
  return out;
}

let schemaPromise;
function describeSchema() {
  schemaPromise ??= unary('/v1/explorer/schema', { consistency: consistency() });
  return schemaPromise;
}

// --- Shared pieces --------------------------------------------------------

const HOLDINGS = {
  HOLDING_DIRECT: 'direct',
  HOLDING_GROUP: 'through a group',
  HOLDING_PARENT: 'through a parent',
  HOLDING_WILDCARD: 'through a wildcard',
  HOLDING_CAVEATED: 'caveated',
};

function holdings(list = []) {
  return list.flatMap((x, i) => [i ? ' ' : null, h('span', { class: 'tag' }, HOLDINGS[x] || x)]);
}

function permissionship(p, missing = []) {
  switch (p) {
    case 'PERMISSIONSHIP_HAS_PERMISSION': return h('span', { class: 'has' }, 'has permission');
    case 'PERMISSIONSHIP_CONDITIONAL_PERMISSION':
      return h('span', { class: 'conditional' }, 'conditional' + (missing.length ? ' (needs ' + missing.join(', ') + ')' : ''));
    default: return h('span', { class: 'no' }, 'no permission');
  }
}

function endsCell(endsAt) {
  if (!endsAt) return h('td', { class: 'ends' }, 'standing');
  return h('td', { class: 'ends' }, new Date(endsAt).toISOString().replace('.000Z', 'Z'));
}

function soon(endsAt) {
  return endsAt && new Date(endsAt).getTime() - Date.now() < SOON_MS;
}

// revisionLine says which revision a page read and links to it pinned.
function revisionLine(readAt) {
  const at = params.get('at');
  const line = h('p', { class: 'revision' });
  if (at) {
    line.append('Reading at a fixed revision. ', h('a', { href: location.pathname + '?' + withoutAt() }, 'Read now'));
  } else if (readAt && readAt.token) {
    const q = new URLSearchParams(location.search);
    q.set('at', readAt.token);
    line.append('Reading now. ', h('a', { href: location.pathname + '?' + q.toString() }, 'Link to this revision'));
  }
  return line;
}

function withoutAt() {
  const q = new URLSearchParams(location.search);
  q.delete('at');
  return q.toString();
}

// pathView draws an access path: the subject, each hop labelled with the
// relation or arrow that led there, the resource. Every hop is a link.
function pathView(path) {
  const rows = [path, ...(path.also || [])];
  const box = h('div', { class: 'pathview', role: 'group', 'aria-label': 'Access path' });
  for (const p of rows) box.append(pathSVG(p));
  if (path.text) box.append(h('p', { class: 'mono muted' }, path.text));
  return box;
}

function pathSVG(path) {
  const nodes = [{ label: subjectText(path.subject), href: path.subject.object.id === '*' ? null : subjectURL(path.subject), kind: 'subject' }];
  const steps = path.steps || [];
  steps.forEach((st, i) => {
    nodes.push({
      label: `${objectText(st.object)}#${st.relation}`,
      href: resourceURL(st.object),
      edge: st.via || st.relation,
      kind: i === steps.length - 1 ? 'resource' : 'hop',
    });
  });
  const widths = nodes.map((n) => Math.max(90, n.label.length * 7.4 + 16));
  const gap = 90;
  let x = 10;
  const svg = s('svg', { role: 'img', 'aria-label': nodes.map((n) => n.label).join(' → '), height: 70 });
  nodes.forEach((n, i) => {
    if (i > 0) {
      const x0 = x - gap;
      svg.append(s('line', { class: 'edge', x1: x0, y1: 40, x2: x - 6, y2: 40 }));
      svg.append(s('polygon', { points: `${x - 6},35 ${x},40 ${x - 6},45`, class: 'edge', fill: 'currentColor' }));
      svg.append(s('text', { class: 'edge-label', x: x0 + 4, y: 32 }, n.edge || ''));
    }
    const g = s('g', { class: 'node ' + n.kind });
    g.append(s('rect', { x, y: 25, width: widths[i], height: 30, rx: 5 }));
    g.append(s('text', { x: x + 8, y: 44 }, n.label));
    if (n.href) {
      const a = s('a', { href: n.href, 'aria-label': 'Open ' + n.label });
      a.append(g);
      svg.append(a);
    } else {
      svg.append(g);
    }
    x += widths[i] + gap;
  });
  svg.setAttribute('width', x - gap + 10);
  return svg;
}

function rememberRecent(text) {
  const list = JSON.parse(sessionStorage.getItem(RECENT_KEY) || '[]').filter((x) => x !== text);
  list.unshift(text);
  sessionStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, 10)));
}

// --- Pages ----------------------------------------------------------------

async function signInPage(message) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const status = h('p', { role: 'status' });
  const form = h('form', { class: 'stack', 'aria-label': 'Sign in' },
    h('label', { for: 'token' }, 'Bearer token', input),
    h('button', { type: 'submit' }, 'Sign in'), status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const token = input.value.trim();
      await post('/v1/explorer/whoami', {}, token);
      sessionStorage.setItem(TOKEN_KEY, token);
      const next = params.get('next');
      location.assign(next && next.startsWith('/ui/') ? next : '/ui/');
    } catch (err) {
      status.replaceChildren(errorBox(err instanceof Unauthenticated ? 'That token was refused.' : err));
    }
  });
  show(h('h1', {}, 'Sign in'),
    message ? h('p', { class: 'muted' }, message) : null,
    h('p', { class: 'muted' }, 'The token is kept in this tab only (sessionStorage) and sent as an Authorization header.'),
    form);
  input.focus();
}

async function searchPage() {
  const sch = await describeSchema();
  const types = sch.definitions.map((d) => d.name);
  const typeSelect = h('select', { id: 'type' }, types.map((t) => h('option', { value: t }, t)));
  if (params.get('type')) typeSelect.value = params.get('type');
  const prefix = h('input', { id: 'prefix', type: 'search', autocomplete: 'off', value: params.get('q') || '', placeholder: 'start of an ID' });
  const results = h('ul', { class: 'results', id: 'results', 'aria-live': 'polite' });
  let timer;
  let seq = 0;
  const run = async () => {
    const mine = ++seq;
    try {
      const resp = await unary('/v1/explorer/search', { consistency: consistency(), type: typeSelect.value, prefix: prefix.value, limit: 20 });
      if (mine !== seq) return;
      const objs = resp.objects || [];
      results.replaceChildren(...objs.map((o) => h('li', {},
        h('a', { href: resourceURL(o), class: 'mono', 'data-object': objectText(o) }, objectText(o)), ' ',
        h('a', { href: subjectURL({ object: o }), class: 'muted' }, '(as subject)'))));
      if (!objs.length) results.append(h('li', { class: 'muted' }, 'No stored object matches.'));
    } catch (err) {
      results.replaceChildren(h('li', {}, errorBox(err)));
    }
  };
  prefix.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 150); });
  typeSelect.addEventListener('change', run);
  prefix.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown') {
      const first = results.querySelector('a');
      if (first) { ev.preventDefault(); first.focus(); }
    }
  });
  const open = h('input', { id: 'open', placeholder: 'document:plan or user:alice' });
  const openForm = h('form', { class: 'filters', 'aria-label': 'Open an object' },
    h('label', { for: 'open' }, 'Open an object', open),
    h('button', { type: 'submit', name: 'as', value: 'resource' }, 'As resource'),
    h('button', { type: 'submit', name: 'as', value: 'subject', class: 'secondary' }, 'As subject'));
  openForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try {
      const asSubject = ev.submitter && ev.submitter.value === 'subject';
      location.assign(asSubject ? subjectURL(parseSubject(open.value.trim())) : resourceURL(parseObject(open.value.trim())));
    } catch (err) {
      openForm.after(errorBox(err));
    }
  });
  const recent = JSON.parse(sessionStorage.getItem(RECENT_KEY) || '[]');
  show(h('h1', {}, 'Search'),
    h('form', { class: 'filters', role: 'search', 'aria-label': 'Search objects', onsubmit: (ev) => { ev.preventDefault(); run(); } },
      h('label', { for: 'type' }, 'Type', typeSelect),
      h('label', { for: 'prefix' }, 'Object ID', prefix),
      h('button', { type: 'submit' }, 'Search')),
    results, openForm,
    recent.length ? h('h2', {}, 'Recent') : null,
    recent.length ? h('ul', { class: 'results', id: 'recent' }, recent.map((r) => h('li', {}, h('a', { href: pageURL(r), class: 'mono' }, r.replace(/^(resource|subject)\//, '').replace(/%3A/g, ':') + ' (' + r.split('/')[0] + ')')))) : null);
  prefix.focus();
  run();
}

// accessTable renders access rows: the first column is the subject (for a
// resource's page) or the resource (for a subject's page).
function accessTable(rows, firstColumn, caption) {
  const body = h('tbody');
  const table = h('table', {}, h('caption', { class: 'muted' }, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, firstColumn === 'subject' ? 'Subject' : 'Resource'),
      h('th', { scope: 'col' }, 'Permission'), h('th', { scope: 'col' }, 'How held'), h('th', { scope: 'col' }, 'Ends'),
      h('th', { scope: 'col' }, 'Answer'), h('th', { scope: 'col' }, 'Path'))), body);
  for (const r of rows) addAccessRow(body, r, firstColumn);
  return table;
}

function addAccessRow(body, r, firstColumn) {
  const a = r.access;
  if (firstColumn === 'subject' && body.dataset.permission !== a.permission) {
    body.dataset.permission = a.permission;
    body.append(h('tr', { class: 'group' }, h('th', { colspan: 6, scope: 'rowgroup' }, a.permission)));
  }
  let who;
  if (firstColumn === 'subject') {
    who = h('td', {}, subjectLink(a.subject));
    if (a.subject.object.id === '*') {
      who.replaceChildren(`every ${a.subject.object.type}` + (a.excludedSubjectIds && a.excludedSubjectIds.length ? ' except ' + a.excludedSubjectIds.join(', ') : ''));
    }
  } else {
    who = h('td', {}, objectLink(a.resource));
  }
  const detail = h('tr', { hidden: true }, h('td', { colspan: 6 }, a.path ? pathView(a.path) : h('span', { class: 'muted' }, 'no path')));
  const toggle = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false' }, 'Show path');
  toggle.addEventListener('click', () => {
    detail.hidden = !detail.hidden;
    toggle.setAttribute('aria-expanded', String(!detail.hidden));
    toggle.textContent = detail.hidden ? 'Show path' : 'Hide path';
  });
  body.append(h('tr', { class: soon(a.endsAt) ? 'soon' : '' }, who, h('td', { class: 'mono' }, a.permission),
    h('td', {}, holdings(a.holdings)), endsCell(a.endsAt), h('td', {}, permissionship(a.permissionship, a.missingContext)),
    h('td', {}, toggle)), detail);
}

// pagedAccess streams an access query a page at a time into a table.
async function pagedAccess(path, request, firstColumn, caption, container) {
  const rows = await stream(path, { ...request, consistency: consistency(), limit: PAGE_SIZE });
  const readAt = rows.length ? rows[0].readAt : null;
  container.replaceChildren(revisionLine(readAt));
  if (!rows.length) {
    container.append(h('p', { class: 'muted' }, 'None.'));
    return;
  }
  const table = accessTable(rows, firstColumn, caption);
  container.append(table);
  let last = rows[rows.length - 1];
  if (rows.length === PAGE_SIZE) {
    const more = h('button', { type: 'button', class: 'secondary' }, 'Load more');
    more.addEventListener('click', async () => {
      try {
        const next = await stream(path, { ...request, consistency: { atExactSnapshot: last.readAt }, limit: PAGE_SIZE, cursor: last.cursor });
        for (const r of next) addAccessRow(table.tBodies[0], r, firstColumn);
        if (next.length < PAGE_SIZE) more.remove(); else last = next[next.length - 1];
      } catch (err) { more.after(errorBox(err)); }
    });
    container.append(more);
  }
}

async function resourcePage(text) {
  const res = parseObject(text);
  rememberRecent('resource/' + encodeURIComponent(text));
  const sch = await describeSchema();
  const def = sch.definitions.find((d) => d.name === res.type);
  const perms = def ? (def.permissions || []).map((p) => p.name) : [];
  const chosen = params.get('permission') || '';
  const permSelect = h('select', { id: 'permission', name: 'permission' }, h('option', { value: '' }, 'every permission'),
    perms.map((p) => h('option', { value: p, selected: p === chosen }, p)));
  const out = h('section', { 'aria-label': 'Who can access' }, h('p', { class: 'muted' }, 'Loading…'));
  show(h('h1', {}, 'Who can access ', h('span', { class: 'mono' }, text)),
    h('form', { class: 'filters', method: 'get', action: location.pathname },
      h('label', { for: 'permission' }, 'Permission', permSelect),
      params.get('at') ? h('input', { type: 'hidden', name: 'at', value: params.get('at') }) : null,
      h('button', { type: 'submit' }, 'Show'),
      h('a', { href: pageURL('subject/' + encodeURIComponent(text)) }, 'What can it access?'),
      h('a', { href: pageURL('audit', { resource: text }) }, 'Its audit trail')),
    out);
  try {
    await pagedAccess('/v1/access/who', { resource: res, permissions: chosen ? [chosen] : [] }, 'subject',
      'Subjects holding a permission, with how they hold it and when it ends', out);
  } catch (err) {
    if (err instanceof Unauthenticated) throw err;
    out.replaceChildren(errorBox(err));
  }
}

async function subjectPage(text) {
  const sub = parseSubject(text);
  rememberRecent('subject/' + encodeURIComponent(text));
  const type = h('input', { id: 'rtype', name: 'type', value: params.get('type') || '', placeholder: 'every type' });
  const perm = h('input', { id: 'rperm', name: 'permission', value: params.get('permission') || '', placeholder: 'every permission' });
  const out = h('section', { 'aria-label': 'What it can access' }, h('p', { class: 'muted' }, 'Loading…'));
  const own = h('section', { 'aria-label': 'Its own relationships' });
  show(h('h1', {}, 'What ', h('span', { class: 'mono' }, text), ' can access'),
    h('form', { class: 'filters', method: 'get', action: location.pathname },
      h('label', { for: 'rtype' }, 'Resource type', type),
      h('label', { for: 'rperm' }, 'Permission', perm),
      params.get('at') ? h('input', { type: 'hidden', name: 'at', value: params.get('at') }) : null,
      h('button', { type: 'submit' }, 'Filter'),
      h('a', { href: pageURL('audit', { subject: text }) }, 'Its audit trail')),
    out, h('h2', {}, 'Its own relationships'),
    h('p', { class: 'muted' }, 'Relationships on this object itself — for an agent, whom it acts for.'), own);
  const request = { subject: sub };
  if (params.get('type')) request.resourceTypes = [params.get('type')];
  if (params.get('permission')) request.permissions = [params.get('permission')];
  try {
    await pagedAccess('/v1/access/what', request, 'resource', 'Resources and permissions it holds', out);
  } catch (err) {
    if (err instanceof Unauthenticated) throw err;
    out.replaceChildren(errorBox(err));
  }
  try {
    const rels = await stream('/v1/relationships/read', { consistency: consistency(), limit: 50,
      filter: { resourceType: sub.object.type, resourceIds: [sub.object.id] } });
    own.replaceChildren(rels.length ? h('ul', { class: 'results' }, rels.map((r) => h('li', {},
      h('span', { class: 'mono' }, `${r.relationship.relation} → `), subjectLink(r.relationship.subject)))) : h('p', { class: 'muted' }, 'None.'));
  } catch (err) {
    if (err instanceof Unauthenticated) throw err;
    own.replaceChildren(errorBox(err));
  }
}

function denialTree(node) {
  const li = h('li', {}, h('span', { class: 'tag kind' }, (node.kind || '').replace('KIND_', '').toLowerCase().replace(/_/g, ' ')),
    node.text || node.label || '');
  if (node.path) li.append(pathView(node.path));
  if (node.children && node.children.length) li.append(h('ul', {}, node.children.map(denialTree)));
  if (node.omitted) li.append(h('p', { class: 'muted' }, `${node.omitted} more branches not shown`));
  return li;
}

async function whyNotPage() {
  const field = (id, label, value, placeholder) => {
    const input = h('input', { id, name: id, value: value || '', placeholder });
    return [h('label', { for: id }, label, input), input];
  };
  const [rl, resource] = field('resource', 'Resource', params.get('resource'), 'document:plan');
  const [pl, permission] = field('permission', 'Permission', params.get('permission'), 'view');
  const [sl, subject] = field('subject', 'Subject', params.get('subject'), 'user:alice');
  const context = h('textarea', { id: 'context', name: 'context', placeholder: '{"ip": "10.0.0.1"}' }, params.get('context') || '');
  const out = h('section', { 'aria-label': 'Answer', 'aria-live': 'polite' });
  show(h('h1', {}, 'Why (not)?'),
    h('form', { class: 'filters', method: 'get', action: '/ui/whynot' }, rl, pl, sl,
      h('label', { for: 'context' }, 'Caveat context (JSON)', context),
      params.get('at') ? h('input', { type: 'hidden', name: 'at', value: params.get('at') }) : null,
      h('button', { type: 'submit' }, 'Check')),
    out);
  if (!params.get('resource') || !params.get('permission') || !params.get('subject')) {
    resource.focus();
    return;
  }
  try {
    const req = { consistency: consistency(), resource: parseObject(params.get('resource')), permission: params.get('permission'),
      subject: parseSubject(params.get('subject')), explain: true };
    if (params.get('context')) {
      try { req.context = JSON.parse(params.get('context')); } catch (e) { throw new Error('caveat context: not JSON: ' + e.message); }
    }
    const resp = await unary('/v1/permissions/check', req);
    out.replaceChildren(revisionLine(resp.checkedAt),
      h('p', { id: 'answer' }, permissionship(resp.permissionship, resp.missingContext || [])));
    if (resp.path) out.append(h('h2', {}, 'Access path'), pathView(resp.path));
    if (resp.denial && resp.denial.root) {
      out.append(h('h2', {}, 'Why not'), h('ul', { class: 'tree', id: 'denial' }, denialTree(resp.denial.root)));
    }
  } catch (err) {
    if (err instanceof Unauthenticated) throw err;
    out.replaceChildren(errorBox(err));
  }
}

const AUDIT_KINDS = {
  AUDIT_EVENT_KIND_CREATED: '+', AUDIT_EVENT_KIND_TOUCHED: '+', AUDIT_EVENT_KIND_DELETED: '−',
  AUDIT_EVENT_KIND_EXPIRED: '~', AUDIT_EVENT_KIND_SCHEMA: 'schema',
};

function auditRow(ev) {
  let change;
  if (ev.relationship) {
    const r = ev.relationship;
    change = h('td', { class: 'mono' }, AUDIT_KINDS[ev.kind] + ' ', objectLink(r.resource), `#${r.relation}@`, subjectLink(r.subject),
      r.caveat ? `[${r.caveat.name}]` : '', r.expiration ? ` until ${r.expiration}` : '');
  } else if (ev.schemaChange) {
    const c = ev.schemaChange;
    change = h('td', { class: 'mono' }, `schema ${c.added ? '+' : '−'}${c.kind} ${c.name}`);
  } else {
    change = h('td', {}, '');
  }
  return h('tr', {}, h('td', { class: 'mono' }, ev.time || ''), h('td', {}, ev.actor || ''), change,
    h('td', { class: 'reason' }, ev.reason || ''),
    h('td', {}, (ev.labels || []).map((l) => h('span', { class: 'tag' }, `${l.key}=${l.value}`))));
}

function sinceTime(text) {
  if (!text) return undefined;
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (m) {
    const unit = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
    return new Date(Date.now() - Number(m[1]) * unit).toISOString();
  }
  const t = new Date(text);
  if (isNaN(t)) throw new Error(`"${text}" is not a time: give 24h, 7d or an RFC 3339 time`);
  return t.toISOString();
}

async function auditPage() {
  const inputs = {};
  const field = (id, label, placeholder) => {
    inputs[id] = h('input', { id, name: id, value: params.get(id) || '', placeholder });
    return h('label', { for: id }, label, inputs[id]);
  };
  const out = h('section', { 'aria-label': 'Audit events' }, h('p', { class: 'muted' }, 'Loading…'));
  show(h('h1', {}, 'Audit trail'),
    h('form', { class: 'filters', method: 'get', action: '/ui/audit' },
      field('resource', 'Resource', 'document:plan or document'), field('subject', 'Subject', 'user:alice'),
      field('actor', 'Actor', 'token name'), field('label', 'Label', 'ticket=SEC-42'),
      field('since', 'Since', '24h or RFC 3339'), field('until', 'Until', 'RFC 3339'),
      h('button', { type: 'submit' }, 'Filter')),
    out);
  try {
    const req = { newestFirst: true, limit: PAGE_SIZE };
    const res = params.get('resource');
    if (res) {
      const i = res.indexOf(':');
      req.resourceType = i < 0 ? res : res.slice(0, i);
      if (i >= 0) req.resourceId = res.slice(i + 1);
    }
    const sub = params.get('subject');
    if (sub) {
      const parsed = sub.includes(':') ? parseSubject(sub) : { object: { type: sub } };
      req.subjectType = parsed.object.type;
      if (parsed.object.id) req.subjectId = parsed.object.id;
      if (parsed.relation) req.subjectRelation = parsed.relation;
    }
    if (params.get('actor')) req.actor = params.get('actor');
    if (params.get('label')) {
      const [key, ...rest] = params.get('label').split('=');
      req.labels = [{ key, value: rest.join('=') }];
    }
    req.since = sinceTime(params.get('since'));
    req.until = sinceTime(params.get('until'));
    const body = h('tbody');
    const table = h('table', { id: 'audit' }, h('caption', { class: 'muted' }, 'Newest first'),
      h('thead', {}, h('tr', {}, ['Time', 'Actor', 'Change', 'Reason', 'Labels'].map((c) => h('th', { scope: 'col' }, c)))), body);
    const load = async (cursor) => {
      const events = await stream('/v1/audit/read', { ...req, cursor });
      for (const e of events) body.append(auditRow(e.event));
      return events;
    };
    const first = await load();
    out.replaceChildren(first.length ? table : h('p', { class: 'muted' }, 'No event matches.'));
    let last = first[first.length - 1];
    if (first.length === PAGE_SIZE) {
      const more = h('button', { type: 'button', class: 'secondary' }, 'Older');
      more.addEventListener('click', async () => {
        const next = await load(last.cursor).catch((err) => { more.after(errorBox(err)); return []; });
        if (next.length < PAGE_SIZE) more.remove(); else last = next[next.length - 1];
      });
      out.append(more);
    }
  } catch (err) {
    if (err instanceof Unauthenticated) throw err;
    out.replaceChildren(errorBox(err));
  }
}

async function expiringPage() {
  const days = h('input', { id: 'days', name: 'days', type: 'number', min: 1, max: 366, value: params.get('days') || '7' });
  const type = h('input', { id: 'etype', name: 'type', value: params.get('type') || '', placeholder: 'every type' });
  const out = h('section', { 'aria-label': 'Expiring access' }, h('p', { class: 'muted' }, 'Loading…'));
  show(h('h1', {}, 'Expiring access'),
    h('form', { class: 'filters', method: 'get', action: '/ui/expiring' },
      h('label', { for: 'days' }, 'Within (days)', days), h('label', { for: 'etype' }, 'Resource type', type),
      h('button', { type: 'submit' }, 'Show')),
    out);
  try {
    const n = Math.max(1, Math.min(366, Number(params.get('days') || 7)));
    const req = { consistency: consistency(), within: `${n * 86400}s`, limit: 1000 };
    if (params.get('type')) req.resourceType = params.get('type');
    const items = await stream('/v1/access/expiring', req);
    const rels = items.filter((i) => i.relationship);
    const accesses = items.filter((i) => i.access);
    out.replaceChildren(revisionLine(items.length ? items[0].readAt : null),
      h('h2', {}, 'Accesses ending'),
      accesses.length ? accessTable(accesses, 'subject', `Effective accesses that end within ${n} days`) : h('p', { class: 'muted' }, 'None.'),
      h('h2', {}, 'Relationships expiring'),
      rels.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Relationship'), h('th', { scope: 'col' }, 'Expires'))),
        h('tbody', {}, rels.map((i) => h('tr', { class: 'soon' }, h('td', { class: 'mono' }, objectLink(i.relationship.resource),
          `#${i.relationship.relation}@`, subjectLink(i.relationship.subject)), h('td', { class: 'ends' }, i.relationship.expiration))))) :
        h('p', { class: 'muted' }, 'None.'));
  } catch (err) {
    if (err instanceof Unauthenticated) throw err;
    out.replaceChildren(errorBox(err));
  }
}

// highlightSchema colours schema text by token, building text nodes only.
function highlightSchema(text) {
  const pre = h('pre', { class: 'schema-text', id: 'schema-text' });
  const re = /(\/\*[\s\S]*?\*\/|\/\/[^\n]*)|("[^"\n]*"|'[^'\n]*')|\b(definition|relation|permission|caveat|use|with|and|expiration|nil|any|all)\b|(->|[+&|=-])|([A-Za-z_][A-Za-z0-9_]*)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    const cls = m[1] ? 'cm' : m[2] ? 'str' : m[3] ? 'kw' : m[4] ? 'op' : 'name';
    pre.append(h('span', { class: cls }, m[0]));
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

// schemaDiagram draws each definition as a box and an edge for each way
// one type reaches another: a relation's allowed subject type (solid,
// labelled with the relation and the subject set's relation) and an
// arrow's walk (dashed).
function schemaDiagram(defs) {
  const n = defs.length;
  const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
  const w = 170;
  const hgt = 40;
  const gx = 110;
  const gy = 90;
  const pos = new Map();
  defs.forEach((d, i) => pos.set(d.name, { x: 20 + (i % cols) * (w + gx), y: 20 + Math.floor(i / cols) * (hgt + gy) }));
  const rows = Math.ceil(n / cols);
  const svg = s('svg', { role: 'img', 'aria-label': 'How types reach each other', width: 40 + cols * (w + gx), height: 40 + rows * (hgt + gy) });
  const center = (name) => { const p = pos.get(name); return { x: p.x + w / 2, y: p.y + hgt / 2 }; };
  const edge = (from, to, label, cls, k) => {
    if (!pos.has(from) || !pos.has(to)) return null;
    const a = center(from);
    const b = center(to);
    if (from === to) {
      const p = pos.get(from);
      const loop = s('path', { class: cls, d: `M${p.x + w - 20},${p.y} c 30,-40 60,0 20,${hgt / 2}` });
      svg.append(loop, s('text', { class: 'label', x: p.x + w + 4, y: p.y - 6 }, label));
      return loop;
    }
    const bend = 18 * (k % 3);
    const mx = (a.x + b.x) / 2 + bend;
    const my = (a.y + b.y) / 2 - bend;
    const path = s('path', { class: cls, d: `M${a.x},${a.y} Q${mx},${my} ${b.x},${b.y}` });
    svg.append(path, s('text', { class: 'label', x: mx, y: my - 3 }, label));
    return path;
  };
  // One edge per (from, to, kind), labelled with every relation or arrow
  // it stands for, so a busy schema stays readable.
  const edges = new Map();
  const add = (from, to, label, cls) => {
    const key = `${from} ${to} ${cls}`;
    if (!edges.has(key)) edges.set(key, { from, to, cls, labels: [] });
    const e = edges.get(key);
    if (!e.labels.includes(label)) e.labels.push(label);
  };
  for (const d of defs) {
    for (const r of d.relations || []) {
      for (const a of r.allowed || []) add(a.type, d.name, r.name + (a.relation ? `#${a.relation}` : a.wildcard ? ':*' : ''), 'rel');
    }
    for (const p of d.permissions || []) {
      for (const ar of p.arrows || []) {
        const ts = (d.relations || []).find((r) => r.name === ar.tupleset);
        for (const a of (ts ? ts.allowed : [])) add(a.type, d.name, `${ar.tupleset}->${ar.target}`, 'arrow');
      }
    }
  }
  let k = 0;
  for (const e of edges.values()) {
    const label = e.labels.length > 3 ? e.labels.slice(0, 3).join(', ') + ` +${e.labels.length - 3}` : e.labels.join(', ');
    const path = edge(e.from, e.to, label, e.cls, k++);
    if (path) path.append(s('title', {}, e.labels.join(', ')));
  }
  for (const d of defs) {
    const p = pos.get(d.name);
    const a = s('a', { href: '/ui/?type=' + encodeURIComponent(d.name), 'aria-label': 'Search ' + d.name });
    const g = s('g', { class: 'type' }, s('rect', { x: p.x, y: p.y, width: w, height: hgt, rx: 6 }),
      s('text', { x: p.x + 10, y: p.y + 25 }, d.name));
    a.append(g);
    svg.append(a);
  }
  return h('div', { class: 'diagram' }, svg);
}

async function schemaPage() {
  const sch = await describeSchema();
  const defs = sch.definitions || [];
  show(h('h1', {}, 'Schema'), revisionLine(sch.readAt),
    h('h2', {}, 'How types reach each other'),
    h('p', { class: 'muted' }, 'Solid: a relation accepts the type (as a subject set when marked #relation). Dashed: a permission walks an arrow.'),
    schemaDiagram(defs),
    h('h2', {}, 'Definitions'),
    h('div', { class: 'defs' }, defs.map((d) => h('section', { class: 'def', 'aria-label': 'definition ' + d.name },
      h('h3', {}, d.name), d.doc ? h('p', { class: 'doc' }, d.doc) : null,
      (d.relations || []).length ? h('ul', {}, d.relations.map((r) => h('li', {}, `relation ${r.name}: ${(r.allowed || []).map((a) => a.text).join(' | ')}`))) : null,
      (d.permissions || []).length ? h('ul', {}, d.permissions.map((p) => h('li', {}, `permission ${p.name} = ${p.expression}`))) : null))),
    (sch.caveats || []).length ? h('h2', {}, 'Caveats') : null,
    (sch.caveats || []).length ? h('ul', { class: 'mono' }, sch.caveats.map((c) => h('li', {},
      `${c.name}(${(c.parameters || []).map((p) => p.name + ' ' + p.type).join(', ')}) { ${c.expression} }`))) : null,
    h('h2', {}, 'Text'), highlightSchema(sch.text || ''));
}

// --- Boot -----------------------------------------------------------------

async function whoami() {
  const header = document.getElementById('who');
  const me = await unary('/v1/explorer/whoami', {});
  const out = h('button', { type: 'button', class: 'secondary', id: 'signout' }, 'Sign out');
  out.addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); location.assign('/ui/signin'); });
  header.replaceChildren(h('span', { id: 'whoami' }, 'Signed in as ', h('strong', {}, me.name)), out);
  return me;
}

function markCurrentNav() {
  for (const a of document.querySelectorAll('.top nav a')) {
    const target = new URL(a.href).pathname.replace(/^\/ui\/?/, '');
    if (target === route || (target === '' && route === '')) a.setAttribute('aria-current', 'page');
  }
}

async function boot() {
  markCurrentNav();
  if (route === 'signin') {
    await signInPage();
    return;
  }
  try {
    await whoami();
    const [page, ...rest] = route.split('/');
    const arg = decodeURIComponent(rest.join('/'));
    switch (page) {
      case '': await searchPage(); break;
      case 'resource': await resourcePage(arg); break;
      case 'subject': await subjectPage(arg); break;
      case 'whynot': await whyNotPage(); break;
      case 'audit': await auditPage(); break;
      case 'expiring': await expiringPage(); break;
      case 'schema': await schemaPage(); break;
      default: show(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/ui/' }, 'Search')));
    }
  } catch (err) {
    if (err instanceof Unauthenticated) {
      location.assign('/ui/signin?next=' + encodeURIComponent(location.pathname + location.search));
      return;
    }
    show(errorBox(err));
  }
}

boot();
