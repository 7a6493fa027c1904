// apiserver.mjs - a test Kubernetes API server for the agent-sandbox CRDs with real API
// semantics: resourceVersion (one global counter, like etcd's revision), list with label and
// field selectors, limit/continue pagination, watch streams (chunked JSON lines) with
// resourceVersion resume, bookmarks and server-side timeouts, 410 Gone once history is
// compacted, 404/409/422 Status objects, generateName, merge patches, status subresources,
// discovery (/apis, /apis/<group>, /apis/<group>/<version>) and bearer-token auth.
//
// What it is not: a full apiserver. No admission webhooks, no field managers, no
// strategic-merge semantics beyond JSON merge patch, no conversion of spec fields between
// versions (objects are returned as stored with the requested apiVersion; the emulated
// controller understands both claim shapes). Resource kinds are read from the upstream CRD
// YAML when it is available (shared/upstream/agent-sandbox), with a built-in table as the
// fallback so the tests do not depend on that directory.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const BUILTIN_KINDS = [
  { group: 'agents.x-k8s.io', kind: 'Sandbox', plural: 'sandboxes', versions: ['v1beta1', 'v1alpha1'], subresources: ['status'] },
  { group: 'extensions.agents.x-k8s.io', kind: 'SandboxClaim', plural: 'sandboxclaims', versions: ['v1beta1', 'v1alpha1'], subresources: ['status'] },
  { group: 'extensions.agents.x-k8s.io', kind: 'SandboxTemplate', plural: 'sandboxtemplates', versions: ['v1beta1', 'v1alpha1'], subresources: [] },
  { group: 'extensions.agents.x-k8s.io', kind: 'SandboxWarmPool', plural: 'sandboxwarmpools', versions: ['v1beta1', 'v1alpha1'], subresources: ['status', 'scale'] },
];
const GATEWAY_KIND = { group: 'gateway.networking.k8s.io', kind: 'Gateway', plural: 'gateways', versions: ['v1'], subresources: ['status'] };

// Extract kind, plural, group and served versions from a CRD YAML file without a YAML
// library: the fields we need sit at fixed places in controller-gen output.
export function readCrd(file) {
  const text = fs.readFileSync(file, 'utf8');
  const group = /^\s{2}group:\s*(\S+)/m.exec(text)?.[1];
  const kind = /^\s{4}kind:\s*(\S+)/m.exec(text)?.[1];
  const plural = /^\s{4}plural:\s*(\S+)/m.exec(text)?.[1];
  const versions = [];
  const re = /^(?:\s{4}|\s{2}- )name:\s*(v\d\w*)\s*$/gm;
  let m;
  while ((m = re.exec(text))) versions.push(m[1]);
  const subresources = /subresources:\s*\n\s+status:/m.test(text) ? ['status'] : [];
  if (!group || !kind || !plural || !versions.length) throw new Error(`cannot read CRD ${file}`);
  return { group, kind, plural, versions, subresources };
}

export function loadKinds() {
  const dirs = [];
  if (process.env.AGENTBOX_UPSTREAM_DIR) dirs.push(process.env.AGENTBOX_UPSTREAM_DIR);
  if (process.env.AGENTBOX_SOURCE_DIR) dirs.push(path.join(process.env.AGENTBOX_SOURCE_DIR, '..', 'shared', 'upstream', 'agent-sandbox'));
  dirs.push('/work/shared/upstream/agent-sandbox');
  for (const d of dirs) {
    try {
      const files = ['agents.x-k8s.io_sandboxes.yaml', 'extensions.agents.x-k8s.io_sandboxclaims.yaml',
        'extensions.agents.x-k8s.io_sandboxtemplates.yaml', 'extensions.agents.x-k8s.io_sandboxwarmpools.yaml'];
      const kinds = files.map((f) => readCrd(path.join(d, f)));
      for (const k of kinds) {
        const b = BUILTIN_KINDS.find((x) => x.kind === k.kind);
        k.subresources = b.subresources; // the YAML scan only sees status
      }
      return { kinds, source: d };
    } catch { /* try the next */ }
  }
  return { kinds: BUILTIN_KINDS.map((k) => ({ ...k })), source: 'builtin' };
}

// ---- label selectors (equality- and set-based, as k8s.io/apimachinery/pkg/labels) ----
export function parseSelector(sel) {
  if (!sel) return [];
  const reqs = [];
  // split on commas that are not inside parentheses
  let depth = 0, cur = '';
  const parts = [];
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  for (let p of parts) {
    p = p.trim();
    if (!p) throw new Error(`invalid selector "${sel}"`);
    let m;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) reqs.push({ key: m[1], op: m[2], values: m[3].split(',').map((s) => s.trim()) });
    else if ((m = /^!\s*(\S+)$/.exec(p))) reqs.push({ key: m[1], op: '!' });
    else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p))) reqs.push({ key: m[1], op: m[2] === '!=' ? '!=' : '=', values: [m[3]] });
    else if ((m = /^([^=!\s()]+)$/.exec(p))) reqs.push({ key: m[1], op: 'exists' });
    else throw new Error(`unable to parse requirement: "${p}"`);
  }
  return reqs;
}

export function selectorMatches(reqs, labels = {}) {
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case '=': if (!has || v !== r.values[0]) return false; break;
      case '!=': if (has && v === r.values[0]) return false; break;
      case 'in': if (!has || !r.values.includes(v)) return false; break;
      case 'notin': if (has && r.values.includes(v)) return false; break;
      case 'exists': if (!has) return false; break;
      case '!': if (has) return false; break;
    }
  }
  return true;
}

function fieldMatches(sel, obj) {
  if (!sel) return true;
  for (const term of sel.split(',')) {
    const m = /^([\w.]+)(==|=|!=)(.*)$/.exec(term.trim());
    if (!m) throw new Error(`invalid field selector "${sel}"`);
    const val = m[1].split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
    const eq = String(val ?? '') === m[3];
    if (m[2] === '!=' ? eq : !eq) return false;
  }
  return true;
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
function labelErrors(labels) {
  const errs = [];
  for (const [k, v] of Object.entries(labels || {})) {
    const slash = k.indexOf('/');
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    const prefix = slash >= 0 ? k.slice(0, slash) : null;
    if (!LABEL_NAME.test(name) || (prefix !== null && !DNS_SUBDOMAIN.test(prefix))) errs.push(`metadata.labels: Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
    if (typeof v !== 'string' || (v !== '' && !LABEL_NAME.test(v))) errs.push(`metadata.labels: Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'`);
  }
  return errs;
}

const deepCopy = (o) => (o === undefined ? undefined : JSON.parse(JSON.stringify(o)));

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return deepCopy(patch);
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function randSuffix(n = 5) {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789'; // k8s.io/apimachinery/pkg/util/rand
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[crypto.randomInt(alphabet.length)];
  return s;
}

export class ApiServer {
  constructor(opts = {}) {
    this.opts = opts;
    const { kinds, source } = loadKinds();
    this.kindSource = source;
    const served = opts.servedVersions || null; // e.g. ['v1alpha1'] for an agent-sandbox 0.4 cluster
    this.kinds = kinds.map((k) => ({ ...k, versions: served ? k.versions.filter((v) => served.includes(v)) : k.versions }));
    this.kinds.push({ ...GATEWAY_KIND });
    if (opts.noCrds) this.kinds = this.kinds.filter((k) => k.group === GATEWAY_KIND.group);
    this.rv = 100;
    this.objects = new Map(); // key -> object
    this.history = []; // {rv, type, key, kindKey, object}
    this.historyMax = opts.historyMax || 10000;
    this.compactedRv = 0; // watches from rv < this get 410
    this.watchers = new Set();
    this.listeners = [];
    this.faults = { errors: [], hangs: [], goneNext: 0 };
    this.requestLog = [];
    this.token = opts.token || null;
    this.bookmarkMs = opts.bookmarkMs ?? 1000;
    this.sockets = new Set();
  }

  kindFor(group, plural) { return this.kinds.find((k) => k.group === group && k.plural === plural); }
  keyOf(k, ns, name) { return `${k.group}/${k.plural}/${ns}/${name}`; }

  on(fn) { this.listeners.push(fn); }

  // ---- storage API used by the controller (no HTTP) ----
  get(group, plural, ns, name) { return deepCopy(this.objects.get(`${group}/${plural}/${ns}/${name}`)); }
  list(group, plural, ns) {
    const prefix = `${group}/${plural}/${ns}/`;
    return [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => deepCopy(v));
  }
  bump() { return String(++this.rv); }

  record(type, k, obj) {
    const key = this.keyOf(k, obj.metadata.namespace, obj.metadata.name);
    const ev = { rv: Number(obj.metadata.resourceVersion), type, key, kindKey: `${k.group}/${k.plural}`, object: deepCopy(obj) };
    this.history.push(ev);
    if (this.history.length > this.historyMax) {
      const dropped = this.history.splice(0, this.history.length - this.historyMax);
      this.compactedRv = dropped.at(-1).rv + 1;
    }
    for (const w of [...this.watchers]) w.offer(ev);
    for (const fn of this.listeners) { try { fn(ev); } catch (e) { console.error('listener failed', e); } }
  }

  create(group, plural, ns, obj) {
    const k = this.kindFor(group, plural);
    obj = deepCopy(obj);
    obj.metadata = obj.metadata || {};
    if (!obj.metadata.name && obj.metadata.generateName) {
      for (let i = 0; i < 10 && !obj.metadata.name; i++) {
        const n = obj.metadata.generateName + randSuffix();
        if (!this.objects.has(this.keyOf(k, ns, n))) obj.metadata.name = n;
      }
    }
    const key = this.keyOf(k, ns, obj.metadata.name);
    if (this.objects.has(key)) return { error: 409 };
    obj.metadata.namespace = ns;
    obj.metadata.uid = crypto.randomUUID();
    obj.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.generation = 1;
    obj.metadata.resourceVersion = this.bump();
    obj.kind = k.kind;
    obj.apiVersion = obj.apiVersion || `${k.group}/${k.versions[0]}`;
    this.objects.set(key, obj);
    this.record('ADDED', k, obj);
    return { object: deepCopy(obj) };
  }

  // Replace an object (controller writes, PUT). rvCheck: refuse on a stale resourceVersion.
  replace(group, plural, ns, name, obj, { rvCheck = false, statusOnly = false } = {}) {
    const k = this.kindFor(group, plural);
    const key = this.keyOf(k, ns, name);
    const cur = this.objects.get(key);
    if (!cur) return { error: 404 };
    if (rvCheck && obj.metadata?.resourceVersion && obj.metadata.resourceVersion !== cur.metadata.resourceVersion) return { error: 409, conflict: true };
    let next;
    if (statusOnly) {
      next = deepCopy(cur);
      next.status = deepCopy(obj.status);
    } else {
      next = deepCopy(obj);
      next.metadata = { ...deepCopy(obj.metadata), name, namespace: ns, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp };
      if (k.subresources.includes('status')) next.status = deepCopy(cur.status); // status only via /status
      if (JSON.stringify(next.spec) !== JSON.stringify(cur.spec)) next.metadata.generation = (cur.metadata.generation || 1) + 1;
      else next.metadata.generation = cur.metadata.generation;
      if (cur.metadata.deletionTimestamp) next.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
    }
    next.kind = k.kind;
    next.apiVersion = cur.apiVersion;
    next.metadata.resourceVersion = this.bump();
    this.objects.set(key, next);
    this.record('MODIFIED', k, next);
    return { object: deepCopy(next) };
  }

  // Controller convenience: read-modify-write with a function.
  update(group, plural, ns, name, fn, opts = {}) {
    const cur = this.get(group, plural, ns, name);
    if (!cur) return null;
    const next = fn(cur) || cur;
    return this.replace(group, plural, ns, name, next, opts).object;
  }

  remove(group, plural, ns, name) {
    const k = this.kindFor(group, plural);
    const key = this.keyOf(k, ns, name);
    const cur = this.objects.get(key);
    if (!cur) return { error: 404 };
    this.objects.delete(key);
    const gone = deepCopy(cur);
    gone.metadata.resourceVersion = this.bump();
    gone.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.record('DELETED', k, gone);
    return { object: gone };
  }

  // Forget history so that any watch or continue token from before now is expired (410).
  compact() {
    this.history = [];
    this.compactedRv = this.rv + 1;
  }

  // ---- HTTP ----
  async listen(host = '127.0.0.1', port = 0) {
    const handler = (req, res) => this.handle(req, res).catch((e) => {
      try { this.sendStatus(res, 500, 'InternalError', `internal error: ${e.message}`); } catch { /* closed */ }
    });
    this.server = this.opts.tls ? https.createServer(this.opts.tls, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 30000;
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    this.server.on('secureConnection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise((resolve, reject) => { this.server.once('error', reject); this.server.listen(port, host, resolve); });
    this.port = this.server.address().port;
    this.url = `${this.opts.tls ? 'https' : 'http'}://${host}:${this.port}`;
    this.bookmarkTimer = setInterval(() => { for (const w of this.watchers) w.bookmark(); }, this.bookmarkMs);
    return this.url;
  }

  async close() {
    clearInterval(this.bookmarkTimer);
    for (const w of [...this.watchers]) w.end();
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise((r) => this.server.close(r));
  }

  dropWatches() { for (const w of [...this.watchers]) w.drop(); }

  sendJson(res, code, obj, headers = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  statusObj(code, reason, message, details) {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
  }

  sendStatus(res, code, reason, message, details, headers) {
    this.sendJson(res, code, this.statusObj(code, reason, message, details), headers);
  }

  async readBody(req) {
    const chunks = [];
    let n = 0;
    for await (const c of req) {
      n += c.length;
      if (n > 3 * 1024 * 1024) throw new Error('request entity too large');
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  injectedFault(req, res, pathname) {
    const match = (f) => (!f.method || f.method === req.method) && (!f.path || new RegExp(f.path).test(pathname));
    for (const f of this.faults.hangs) {
      if (f.count > 0 && match(f)) {
        f.count--;
        // Never answer; the socket is destroyed when the server closes or the client gives up.
        req.on('close', () => {});
        return true;
      }
    }
    for (const f of this.faults.errors) {
      if (f.count > 0 && match(f)) {
        f.count--;
        const code = f.status || 500;
        const reason = code === 429 ? 'TooManyRequests' : code === 503 ? 'ServiceUnavailable' : 'InternalError';
        const headers = code === 429 || code === 503 ? { 'Retry-After': String(f.retryAfter ?? 0) } : {};
        if (f.reset) { req.socket.destroy(); return true; }
        this.sendStatus(res, code, reason, f.message || `injected fault: ${code}`, undefined, headers);
        return true;
      }
    }
    return false;
  }

  async handle(req, res) {
    const u = new URL(req.url, 'http://x');
    const pathname = u.pathname;
    this.requestLog.push({ method: req.method, path: pathname, query: u.search, t: Date.now(), auth: req.headers.authorization ? 'bearer' : (req.socket.getPeerCertificate?.()?.subject ? 'cert' : 'none'), bearer: req.headers.authorization?.replace(/^Bearer /, '') });
    if (this.requestLog.length > 5000) this.requestLog.splice(0, 1000);
    if (pathname.startsWith('/_admin/')) return this.opts.admin(req, res, pathname, u);
    if (this.token) {
      const ok = req.headers.authorization === `Bearer ${this.token}` || (this.opts.tls && req.socket.authorized);
      if (!ok) return this.sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    }
    if (this.injectedFault(req, res, pathname)) return;
    if (pathname === '/version') return this.sendJson(res, 200, { major: '1', minor: '33', gitVersion: 'v1.33.0-agentbox-test' });
    if (pathname === '/apis') {
      const groups = [...new Set(this.kinds.map((k) => k.group))];
      return this.sendJson(res, 200, {
        kind: 'APIGroupList', apiVersion: 'v1',
        groups: groups.map((g) => this.groupInfo(g)),
      });
    }
    let m = /^\/apis\/([^/]+)\/?$/.exec(pathname);
    if (m) {
      if (!this.kinds.some((k) => k.group === m[1])) return this.sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
      return this.sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...this.groupInfo(m[1]) });
    }
    m = /^\/apis\/([^/]+)\/([^/]+)\/?$/.exec(pathname);
    if (m) {
      const ks = this.kinds.filter((k) => k.group === m[1] && k.versions.includes(m[2]));
      if (!ks.length) return this.sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
      const resources = [];
      for (const k of ks) {
        resources.push({ name: k.plural, singularName: k.kind.toLowerCase(), namespaced: true, kind: k.kind, verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'] });
        for (const s of k.subresources) resources.push({ name: `${k.plural}/${s}`, namespaced: true, kind: s === 'scale' ? 'Scale' : k.kind, verbs: ['get', 'patch', 'update'] });
      }
      return this.sendJson(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${m[1]}/${m[2]}`, resources });
    }
    m = /^\/apis\/([^/]+)\/([^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?\/?$/.exec(pathname);
    if (!m) return this.sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    const [, group, version, ns, plural, name, sub] = m;
    const k = this.kindFor(group, plural);
    if (!k || !k.versions.includes(version)) return this.sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    if (sub && !k.subresources.includes(sub)) return this.sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    const gr = `${plural}.${group}`;
    const notFound = () => this.sendStatus(res, 404, 'NotFound', `${gr} "${name}" not found`, { name, group, kind: plural });
    const out = (o) => { if (o) o.apiVersion = `${group}/${version}`; return o; };
    if (!name) {
      if (req.method === 'GET') return u.searchParams.get('watch') === 'true' || u.searchParams.get('watch') === '1' ? this.watch(req, res, k, ns, u, version) : this.listHttp(res, k, ns, u, version);
      if (req.method === 'POST') {
        let obj;
        try { obj = JSON.parse(await this.readBody(req)); } catch (e) { return this.sendStatus(res, 400, 'BadRequest', `the body of the request was in an unknown format: ${e.message}`); }
        if (!obj || typeof obj !== 'object') return this.sendStatus(res, 400, 'BadRequest', 'body must be an object');
        if (obj.kind && obj.kind !== k.kind) return this.sendStatus(res, 400, 'BadRequest', `the API version in the data (${obj.apiVersion}) does not match the expected API version (${group}/${version})`);
        const meta = obj.metadata || {};
        const errs = this.validate(k, version, obj);
        if (!meta.name && !meta.generateName) errs.unshift('metadata.name: Required value: name or generateName is required');
        if (meta.name && !DNS_SUBDOMAIN.test(meta.name)) errs.push(`metadata.name: Invalid value: "${meta.name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`);
        if (errs.length) return this.sendStatus(res, 422, 'Invalid', `${k.kind}.${group} "${meta.name || meta.generateName}" is invalid: ${errs.join(', ')}`, { name: meta.name, group, kind: k.kind, causes: errs.map((e) => ({ reason: 'FieldValueInvalid', message: e })) });
        obj.apiVersion = `${group}/${version}`;
        const r = this.create(group, plural, ns, obj);
        if (r.error === 409) return this.sendStatus(res, 409, 'AlreadyExists', `${gr} "${meta.name}" already exists`, { name: meta.name, group, kind: plural });
        return this.sendJson(res, 201, out(r.object));
      }
      return this.sendStatus(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
    const key = this.keyOf(k, ns, name);
    if (req.method === 'GET') {
      const o = this.objects.get(key);
      if (!o) return notFound();
      if (sub === 'scale') return this.sendJson(res, 200, { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name, namespace: ns }, spec: { replicas: o.spec?.replicas ?? 0 }, status: { replicas: o.status?.replicas ?? 0, selector: o.status?.selector || '' } });
      return this.sendJson(res, 200, out(deepCopy(o)));
    }
    if (req.method === 'DELETE') {
      const r = this.remove(group, plural, ns, name);
      if (r.error) return notFound();
      return this.sendJson(res, 200, out(r.object));
    }
    if (req.method === 'PUT' || req.method === 'PATCH') {
      let body;
      try { body = JSON.parse(await this.readBody(req)); } catch (e) { return this.sendStatus(res, 400, 'BadRequest', `the body of the request was in an unknown format: ${e.message}`); }
      const cur = this.objects.get(key);
      if (!cur) return notFound();
      let next;
      if (req.method === 'PATCH') {
        const ct = (req.headers['content-type'] || '').split(';')[0];
        if (ct !== 'application/merge-patch+json' && ct !== 'application/strategic-merge-patch+json') return this.sendStatus(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json`);
        if (body?.metadata?.resourceVersion && body.metadata.resourceVersion !== cur.metadata.resourceVersion) return this.sendStatus(res, 409, 'Conflict', `Operation cannot be fulfilled on ${gr} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group, kind: plural });
        next = mergePatch(deepCopy(cur), body);
        next.metadata.resourceVersion = cur.metadata.resourceVersion;
      } else {
        next = body;
      }
      const errs = labelErrors(next.metadata?.labels);
      if (errs.length) return this.sendStatus(res, 422, 'Invalid', `${k.kind}.${group} "${name}" is invalid: ${errs.join(', ')}`, { name, group, kind: k.kind });
      const r = this.replace(group, plural, ns, name, next, { rvCheck: true, statusOnly: sub === 'status' });
      if (r.error === 409) return this.sendStatus(res, 409, 'Conflict', `Operation cannot be fulfilled on ${gr} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group, kind: plural });
      if (r.error) return notFound();
      return this.sendJson(res, 200, out(r.object));
    }
    return this.sendStatus(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  groupInfo(g) {
    const versions = [...new Set(this.kinds.filter((k) => k.group === g).flatMap((k) => k.versions))];
    return { name: g, versions: versions.map((v) => ({ groupVersion: `${g}/${v}`, version: v })), preferredVersion: { groupVersion: `${g}/${versions[0]}`, version: versions[0] } };
  }

  validate(k, version, obj) {
    const errs = labelErrors(obj.metadata?.labels);
    if (k.kind === 'SandboxClaim') {
      if (version === 'v1beta1' && !obj.spec?.warmPoolRef?.name) errs.push('spec.warmPoolRef.name: Required value');
      if (version === 'v1alpha1' && !obj.spec?.sandboxTemplateRef?.name) errs.push('spec.sandboxTemplateRef.name: Required value');
      const lc = obj.spec?.lifecycle;
      if (lc?.shutdownTime && Number.isNaN(Date.parse(lc.shutdownTime))) errs.push(`spec.lifecycle.shutdownTime: Invalid value: "${lc.shutdownTime}": must be a date-time`);
      if (lc?.shutdownPolicy && !['Delete', 'DeleteForeground', 'Retain'].includes(lc.shutdownPolicy)) errs.push(`spec.lifecycle.shutdownPolicy: Unsupported value: "${lc.shutdownPolicy}"`);
    }
    if (k.kind === 'SandboxWarmPool' && !obj.spec?.sandboxTemplateRef?.name) errs.push('spec.sandboxTemplateRef.name: Required value');
    return errs;
  }

  listHttp(res, k, ns, u, version) {
    let reqs;
    try { reqs = parseSelector(u.searchParams.get('labelSelector')); } catch (e) { return this.sendStatus(res, 400, 'BadRequest', e.message); }
    const fsel = u.searchParams.get('fieldSelector');
    const limit = parseInt(u.searchParams.get('limit') || '0', 10);
    const cont = u.searchParams.get('continue');
    let listRv = String(this.rv), start = '';
    if (cont) {
      let tok;
      try { tok = JSON.parse(Buffer.from(cont, 'base64url').toString()); } catch { return this.sendStatus(res, 400, 'BadRequest', 'continue key is not valid: illegal base64 data'); }
      // Like etcd: a continue token past compaction is expired and must be relisted.
      if (Number(tok.rv) < this.compactedRv) return this.sendStatus(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      listRv = tok.rv;
      start = tok.start;
    }
    const prefix = `${k.group}/${k.plural}/${ns}/`;
    let items;
    try {
      items = [...this.objects.entries()].filter(([key]) => key.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .filter(([key, o]) => key > prefix + start && selectorMatches(reqs, o.metadata.labels) && fieldMatches(fsel, o));
    } catch (e) { return this.sendStatus(res, 400, 'BadRequest', e.message); }
    const meta = { resourceVersion: listRv };
    if (limit > 0 && items.length > limit) {
      const last = items[limit - 1][1].metadata.name;
      items = items.slice(0, limit);
      meta.continue = Buffer.from(JSON.stringify({ rv: listRv, start: last })).toString('base64url');
      meta.remainingItemCount = undefined;
    }
    return this.sendJson(res, 200, {
      kind: `${k.kind}List`, apiVersion: `${k.group}/${version}`, metadata: meta,
      items: items.map(([, o]) => { const c = deepCopy(o); c.apiVersion = `${k.group}/${version}`; return c; }),
    });
  }

  watch(req, res, k, ns, u, version) {
    let reqs;
    try { reqs = parseSelector(u.searchParams.get('labelSelector')); } catch (e) { return this.sendStatus(res, 400, 'BadRequest', e.message); }
    const fsel = u.searchParams.get('fieldSelector');
    const rvParam = u.searchParams.get('resourceVersion') || '';
    const bookmarks = u.searchParams.get('allowWatchBookmarks') === 'true';
    const timeoutS = parseInt(u.searchParams.get('timeoutSeconds') || String(this.opts.watchTimeoutS || 1800), 10);
    const kindKey = `${k.group}/${k.plural}`;
    const prefix = `${kindKey}/${ns}/`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const self = this;
    let lastRv = rvParam && rvParam !== '0' ? Number(rvParam) : this.rv;
    const w = {
      closed: false,
      send(type, object) {
        if (this.closed) return;
        const o = deepCopy(object);
        if (type !== 'ERROR' && type !== 'BOOKMARK') o.apiVersion = `${k.group}/${version}`;
        res.write(JSON.stringify({ type, object: o }) + '\n');
      },
      matches(o) {
        try { return selectorMatches(reqs, o.metadata.labels) && fieldMatches(fsel, o); } catch { return false; }
      },
      offer(ev) {
        if (this.closed || ev.kindKey !== kindKey || !ev.key.startsWith(prefix) || ev.rv <= lastRv) return;
        lastRv = ev.rv;
        if (this.matches(ev.object)) this.send(ev.type, ev.object);
      },
      bookmark() {
        if (!bookmarks || this.closed) return;
        this.send('BOOKMARK', { kind: k.kind, apiVersion: `${k.group}/${version}`, metadata: { resourceVersion: String(lastRv) } });
      },
      end() {
        if (this.closed) return;
        this.closed = true;
        clearTimeout(this.timer);
        self.watchers.delete(this);
        res.end();
      },
      drop() {
        if (this.closed) return;
        this.closed = true;
        clearTimeout(this.timer);
        self.watchers.delete(this);
        res.socket?.destroy(); // abrupt: no terminating chunk
      },
    };
    req.on('close', () => { w.closed = true; clearTimeout(w.timer); this.watchers.delete(w); });
    w.timer = setTimeout(() => w.end(), Math.max(0, timeoutS) * 1000);
    if (this.faults.goneNext > 0 && rvParam && rvParam !== '0') {
      this.faults.goneNext--;
      w.send('ERROR', this.statusObj(410, 'Expired', `too old resource version: ${rvParam} (${this.rv})`));
      return w.end();
    }
    if (!rvParam || rvParam === '0') {
      // Synthetic ADDED events for the current state, then changes after it.
      for (const [key, o] of [...this.objects.entries()].sort()) {
        if (key.startsWith(prefix) && w.matches(o)) w.send('ADDED', o);
      }
    } else {
      const from = Number(rvParam);
      if (Number.isNaN(from)) { w.send('ERROR', this.statusObj(400, 'BadRequest', `invalid resource version: ${rvParam}`)); return w.end(); }
      if (from < this.compactedRv - 1) {
        w.send('ERROR', this.statusObj(410, 'Expired', `too old resource version: ${rvParam} (${this.compactedRv})`));
        return w.end();
      }
      lastRv = from;
      for (const ev of this.history) w.offer(ev);
    }
    this.watchers.add(w);
  }
}
