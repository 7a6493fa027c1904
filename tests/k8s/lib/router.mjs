// router.mjs - sandbox-router emulation (the Python router's contract, agent-sandbox.md 3.1):
// routes on X-Sandbox-ID / -Namespace / -Port / -Pod-IP, honours X-Sandbox-Timeout (capped
// at proxyTimeoutS), strips routing, hop-by-hop, Host and Authorization headers, keeps the raw
// path (so %2F stays encoded), answers GET /healthz, and reports failures as
// {"detail": ...} with 400/401/502/504 and the upstream texts.
// Differences on purpose: pod IPs are loopback addresses here (127.a.b.N stands in for the pod
// network), so the loopback rejection of the real router is not applied; "DNS" resolution of
// <id>.<ns>.svc.cluster.local is emulated from the Sandbox objects (only Sandboxes with
// spec.service: true resolve, as with the real headless Service).
// Faults: kill the runtime behind a request after a delay (a runtime dying mid-command).
import http from 'node:http';
import net from 'node:net';

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailers', 'transfer-encoding', 'upgrade']);

export class Router {
  constructor({ controller, api, token = null, proxyTimeoutS = 180 }) {
    this.controller = controller;
    this.api = api;
    this.token = token;
    this.proxyTimeoutS = proxyTimeoutS;
    this.faults = { killRuntime: null };
    this.requests = [];
    this.sockets = new Set();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  detail(res, code, msg) {
    if (res.headersSent) { res.destroy(); return; }
    const body = JSON.stringify({ detail: msg });
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  resolve(req) {
    const id = req.headers['x-sandbox-id'];
    const ns = req.headers['x-sandbox-namespace'] || 'default';
    const portH = req.headers['x-sandbox-port'] || '8888';
    const ipH = req.headers['x-sandbox-pod-ip'];
    if (!id) return { error: [400, 'X-Sandbox-ID header is required.'] };
    if (id.length > 63 || !DNS_LABEL.test(id)) return { error: [400, 'Invalid sandbox ID format.'] };
    if (ns.length > 63 || !DNS_LABEL.test(ns)) return { error: [400, 'Invalid namespace format.'] };
    const port = Number(portH);
    if (!/^\d+$/.test(portH) || port < 1 || port > 65535) return { error: [400, 'Invalid port format.'] };
    let host;
    if (ipH) {
      if (!net.isIP(ipH)) return { error: [400, 'Invalid target IP address format.'] };
      if (ipH === '0.0.0.0' || ipH === '::' || ipH.startsWith('169.254.') || /^2(2[4-9]|3\d)\./.test(ipH)) return { error: [400, 'Invalid target IP address.'] };
      host = ipH;
    } else {
      // "<id>.<ns>.svc.cluster.local": only a Sandbox with a Service has a DNS name.
      const sb = this.api.get('agents.x-k8s.io', 'sandboxes', ns, id);
      host = sb?.spec?.service ? this.controller.podIpOf(id) : null;
    }
    return { id, ns, port, host };
  }

  async handle(req, res) {
    const u = req.url;
    this.requests.push({ method: req.method, url: u, headers: { ...req.headers }, t: Date.now() });
    if (this.requests.length > 2000) this.requests.splice(0, 500);
    if (u === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end('{"status":"ok"}');
    }
    if (this.token) {
      const a = req.headers.authorization || '';
      if (!a.startsWith('Bearer ')) return this.detail(res, 401, 'Missing or invalid Authorization header.');
      if (a.slice(7) !== this.token) return this.detail(res, 401, 'Invalid token.');
    }
    const r = this.resolve(req);
    if (r.error) return this.detail(res, ...r.error);
    if (!r.host) return this.detail(res, 502, `Could not connect to the backend sandbox: ${r.id}`);
    let t = Number(req.headers['x-sandbox-timeout']);
    if (!Number.isFinite(t) || t <= 0) t = this.proxyTimeoutS;
    t = Math.min(t, this.proxyTimeoutS);
    const headers = {};
    const connHeaders = new Set((req.headers.connection || '').split(',').map((s) => s.trim().toLowerCase()));
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith('x-sandbox-') || HOP.has(k) || connHeaders.has(k) || k === 'host' || k === 'authorization') continue;
      headers[k] = v;
    }
    const host = net.isIPv6(r.host) ? `[${r.host}]` : r.host;
    const up = http.request({ host: r.host, port: r.port, method: req.method, path: u, headers: { ...headers, host: `${host}:${r.port}` }, agent: this.agent });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; up.destroy(new Error('timeout')); }, t * 1000);
    const kill = this.faults.killRuntime;
    if (kill && kill.count > 0 && (!kill.path || u.startsWith(kill.path)) && (!kill.sandbox || kill.sandbox === r.id)) {
      kill.count--;
      setTimeout(() => this.controller.killRuntime(r.id, kill.restartAfterMs ?? 300), kill.afterMs ?? 100);
    }
    up.on('response', (ur) => {
      const out = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode, out);
      ur.pipe(res);
      ur.on('end', () => clearTimeout(timer));
      ur.on('error', () => { clearTimeout(timer); res.destroy(); });
      ur.on('aborted', () => { clearTimeout(timer); res.destroy(); });
    });
    up.on('error', () => {
      clearTimeout(timer);
      if (timedOut) this.detail(res, 504, `Timed out waiting for the backend sandbox: ${r.id}`);
      else this.detail(res, 502, `Could not connect to the backend sandbox: ${r.id}`);
    });
    req.on('aborted', () => up.destroy());
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
  }

  async listen(host = '127.0.0.1', port = 0) {
    this.server = http.createServer((req, res) => this.handle(req, res).catch(() => this.detail(res, 500, 'An internal error occurred in the proxy.')));
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise((resolve, reject) => { this.server.once('error', reject); this.server.listen(port, host, resolve); });
    this.port = this.server.address().port;
    this.url = `http://${host}:${this.port}`;
    return this.url;
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    if (this.server) await new Promise((r) => this.server.close(r));
  }
}
