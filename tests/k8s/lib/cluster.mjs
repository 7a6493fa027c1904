// cluster.mjs - the whole test cluster in one process: API server + emulated agent-sandbox
// controller + router, bootstrapped with a SandboxTemplate (agentbox-runtime on 8888), a
// warm pool and a cold (replicas 0) pool, and an admin API under /_admin/ on the API
// server's port for tests to inject faults and inspect state:
//   POST /_admin/faults   {errors:[{method,path,status,count,retryAfter,reset}],
//                          hangs:[{method,path,count}], goneNext:N, compact:true,
//                          dropWatches:true, neverReady:bool, claimReason:{reason,message,count},
//                          killRuntime:{path,sandbox,afterMs,count,restartAfterMs},
//                          podStartDelayMs:N, gatewayNoAddress:bool, routerToken:T|null}
//   POST /_admin/kill-runtime {name}      a pod's runtime dies (restarted after a while)
//   POST /_admin/apply {object}           create/replace any object (templates, pools, ...)
//   GET  /_admin/state                    claims, sandboxes, pools, pods, counters
//   GET  /_admin/requests                 API request log; DELETE clears it
//   GET  /_admin/router-requests          requests the router saw
// isolatePods: true runs each pod's runtime in a mount namespace of its own with the pod's
// volume at its mountPath, as the template's runAsUser (controller.mjs, runtime.mjs; needs
// root). Everything binds loopback only. TLS (tls: true) generates a throwaway CA, server and
// client certificates with openssl so kubeconfig client-certificate and CA handling can be
// tested.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiServer } from './apiserver.mjs';
import { Controller, GA, GE } from './controller.mjs';
import { Router } from './router.mjs';

const TEMPLATE = 'agentbox-template';

// tlsName: the server certificate names only that DNS name (no IP, no localhost), for
// kubeconfig tls-server-name tests; otherwise it is valid for 127.0.0.1 and localhost.
function makeCerts(dir, tlsName) {
  const o = (args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const p = (f) => path.join(dir, f);
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=agentbox-test-ca']);
  fs.writeFileSync(p('san.cnf'), `subjectAltName=${tlsName ? `DNS:${tlsName}` : 'IP:127.0.0.1,DNS:localhost'}\n`);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${tlsName || '127.0.0.1'}`]);
  o(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('san.cnf')]);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('client.key'), '-out', p('client.csr'), '-subj', '/CN=agentbox/O=system:masters']);
  o(['x509', '-req', '-in', p('client.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('client.crt'), '-days', '2']);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

// The bootstrapped template's pod spec. With isolatePods it is a production-like one
// (examples/k8s/sandbox-template.yaml): a non-root user and an emptyDir volume at
// opts.podWorkspace (default /workspace), which the emulated pods honour.
function podSpec(opts) {
  const c = { name: 'runtime', image: 'agentbox-runtime:test', ports: [{ containerPort: 8888 }] };
  if (!opts.isolatePods) return { containers: [c] };
  c.securityContext = { runAsNonRoot: true, runAsUser: opts.podUid ?? 1000, allowPrivilegeEscalation: false };
  c.volumeMounts = [{ name: 'workspace', mountPath: opts.podWorkspace || '/workspace' }];
  return { containers: [c], volumes: [{ name: 'workspace', emptyDir: {} }] };
}

export async function startCluster(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abk8s-'));
  const ns = opts.namespace || 'default';
  const token = opts.token ?? 'test-token-' + Math.random().toString(36).slice(2);
  let tls = null, certs = null;
  if (opts.tls) {
    certs = makeCerts(dir, opts.tlsName);
    tls = { key: fs.readFileSync(certs.key), cert: fs.readFileSync(certs.cert), ca: fs.readFileSync(certs.ca), requestCert: true, rejectUnauthorized: false };
  }
  const api = new ApiServer({ token, tls, servedVersions: opts.servedVersions, bookmarkMs: opts.bookmarkMs, watchTimeoutS: opts.watchTimeoutS, noCrds: opts.noCrds, admin: (...a) => admin(...a) });
  const controller = new Controller(api, { namespace: ns, podStartDelayMs: opts.podStartDelayMs, runtimeTimeout: opts.runtimeTimeout, isolatePods: !!opts.isolatePods });
  const router = new Router({ controller, api, token: opts.routerToken || null });
  await api.listen('127.0.0.1', opts.apiPort || 0);
  await router.listen('127.0.0.1', opts.routerPort || 0);
  controller.opts.gatewayAddress = '127.0.0.1';

  const version = (opts.servedVersions || ['v1beta1'])[0];
  if (!opts.noCrds && !opts.empty) {
    api.create(GE, 'sandboxtemplates', ns, {
      apiVersion: `${GE}/${version}`, kind: 'SandboxTemplate', metadata: { name: TEMPLATE },
      spec: { podTemplate: { metadata: { labels: { app: 'agentbox-sandbox' } }, spec: podSpec(opts) } },
    });
    api.create(GE, 'sandboxwarmpools', ns, { apiVersion: `${GE}/${version}`, kind: 'SandboxWarmPool', metadata: { name: 'warm-pool' }, spec: { replicas: opts.warmReplicas ?? 2, sandboxTemplateRef: { name: TEMPLATE } } });
    api.create(GE, 'sandboxwarmpools', ns, { apiVersion: `${GE}/${version}`, kind: 'SandboxWarmPool', metadata: { name: 'cold-pool' }, spec: { replicas: 0, sandboxTemplateRef: { name: TEMPLATE } } });
    if (version === 'v1beta1') api.create('gateway.networking.k8s.io', 'gateways', ns, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'sandbox-gateway' }, spec: { gatewayClassName: 'test', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
  }

  async function readJson(req) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const t = Buffer.concat(chunks).toString();
    return t ? JSON.parse(t) : {};
  }
  async function admin(req, res, pathname, u) {
    const send = (code, obj) => api.sendJson(res, code, obj);
    try {
      if (pathname === '/_admin/faults' && req.method === 'POST') {
        const f = await readJson(req);
        if (f.errors) api.faults.errors.push(...f.errors);
        if (f.hangs) api.faults.hangs.push(...f.hangs);
        if (f.goneNext) api.faults.goneNext += f.goneNext;
        if (f.compact) api.compact();
        if (f.dropWatches) api.dropWatches();
        if (f.neverReady !== undefined) controller.faults.neverReady = f.neverReady;
        if (f.claimReason !== undefined) controller.faults.claimReason = f.claimReason;
        if (f.podStartDelayMs !== undefined) controller.faults.podStartDelayMs = f.podStartDelayMs;
        if (f.killRuntime !== undefined) router.faults.killRuntime = f.killRuntime;
        if (f.gatewayNoAddress !== undefined) controller.faults.gatewayNoAddress = f.gatewayNoAddress;
        if (f.routerToken !== undefined) router.token = f.routerToken; // rotate (null = off)
        if (f.clear) { api.faults.errors = []; api.faults.hangs = []; api.faults.goneNext = 0; controller.faults.neverReady = false; controller.faults.claimReason = null; router.faults.killRuntime = null; }
        return send(200, { ok: true });
      }
      if (pathname === '/_admin/kill-runtime' && req.method === 'POST') {
        const { name, restartAfterMs } = await readJson(req);
        return send(200, { killed: await controller.killRuntime(name, restartAfterMs ?? 300) });
      }
      if (pathname === '/_admin/apply' && req.method === 'POST') {
        const { object } = await readJson(req);
        const [group] = object.apiVersion.split('/');
        const plural = api.kinds.find((k) => k.kind === object.kind)?.plural;
        const cur = api.get(group, plural, ns, object.metadata.name);
        const r = cur ? api.replace(group, plural, ns, object.metadata.name, { ...object, metadata: { ...cur.metadata, ...object.metadata } }) : api.create(group, plural, ns, object);
        return send(200, r.object || r);
      }
      if (pathname === '/_admin/state') {
        return send(200, {
          rv: api.rv,
          claims: api.list(GE, 'sandboxclaims', ns),
          sandboxes: api.list(GA, 'sandboxes', ns),
          pools: api.list(GE, 'sandboxwarmpools', ns),
          pods: Object.fromEntries([...controller.pods.entries()].map(([n, p]) => [n, { ip: p.ip, alive: !!p.rt?.alive, dir: p.dir }])),
          stats: controller.stats,
          watchers: api.watchers.size,
        });
      }
      if (pathname === '/_admin/requests') {
        if (req.method === 'DELETE') { api.requestLog.length = 0; return send(200, {}); }
        return send(200, api.requestLog);
      }
      if (pathname === '/_admin/router-requests') {
        if (req.method === 'DELETE') { router.requests.length = 0; return send(200, {}); }
        return send(200, router.requests);
      }
      return send(404, { message: 'no such admin endpoint' });
    } catch (e) {
      return send(500, { message: e.message });
    }
  }

  // kubeconfig files for the client under test
  const server = api.url;
  const kc = (user) => [
    'apiVersion: v1', 'kind: Config', 'current-context: test',
    'clusters:', '- name: test', '  cluster:', `    server: ${server}`,
    ...(certs ? [`    certificate-authority: ${certs.ca}`] : []),
    'contexts:', '- name: test', '  context:', '    cluster: test', '    user: test', `    namespace: ${ns}`,
    'users:', '- name: test', '  user:', ...user, '',
  ].join('\n');
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, kc([`    token: ${token}`]), { mode: 0o600 });
  let kubeconfigCert = null;
  if (certs) {
    kubeconfigCert = path.join(dir, 'kubeconfig-cert');
    fs.writeFileSync(kubeconfigCert, kc([`    client-certificate: ${certs.clientCert}`, `    client-key: ${certs.clientKey}`]), { mode: 0o600 });
  }

  const info = { api: api.url, router: router.url, routerPort: router.port, routerToken: opts.routerToken || null, namespace: ns, token, kubeconfig, kubeconfigCert, certs, template: TEMPLATE, warmPool: 'warm-pool', coldPool: 'cold-pool', gateway: 'sandbox-gateway', dir, kindSource: api.kindSource };
  return {
    api, controller, router, info,
    async waitFor(pred, ms = 10000) {
      const end = Date.now() + ms;
      while (Date.now() < end) { if (await pred()) return true; await new Promise((r) => setTimeout(r, 20)); }
      throw new Error('condition not reached in time');
    },
    async stop() {
      await controller.stop();
      await router.close();
      await api.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
