// controller.mjs - an emulated agent-sandbox controller (v0.5.x behaviour, with v1alpha1
// claims understood as v0.4.x did) driving the test API server:
//   - Sandbox: "runs a pod" by starting one agentbox-runtime on its own loopback address
//     (127.a.b.N:8888 stands in for the pod IP), then sets status.podIPs, selector, nodeName
//     and Ready=True/DependenciesReady; expiry (spec.shutdownTime) stops it with
//     SandboxExpired and deletes it under shutdownPolicy Delete.
//   - SandboxWarmPool: keeps spec.replicas unclaimed Sandboxes (generateName "<pool>-",
//     labels warm-pool-sandbox=<hash>, launch-type=warm, created-by=controller) and reports
//     replicas/readyReplicas/selector/observedGeneration.
//   - SandboxClaim: validates (WarmPoolNotFound, TemplateNotFound, InvalidMetadata,
//     EnvVarsInjectionRejected, VolumeClaimTemplatesError, ClaimExpired), adopts a Ready
//     pool Sandbox FIFO (owner -> claim, launch-type=warm, claim annotation
//     agents.x-k8s.io/sandbox-name) or cold-creates one named like the claim, and forwards
//     the Sandbox's Ready condition and pod IPs into the claim status. Claim deletion
//     garbage-collects owned Sandboxes (owner references).
// Faults (set through the admin API): pods that never become Ready, a forced terminal
// reason for the next claims, runtimes killed on demand (restarted like a kubelet would).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startRuntime } from './runtime.mjs';

export const GA = 'agents.x-k8s.io';
export const GE = 'extensions.agents.x-k8s.io';
const L = {
  launchType: 'agents.x-k8s.io/launch-type',
  createdBy: 'agents.x-k8s.io/created-by',
  warmPool: 'agents.x-k8s.io/warm-pool-sandbox',
  claimUid: 'agents.x-k8s.io/claim-uid',
  sandboxName: 'agents.x-k8s.io/sandbox-name',
  podName: 'agents.x-k8s.io/pod-name',
  templateRef: 'agents.x-k8s.io/sandbox-template-ref',
  nameHash: 'agents.x-k8s.io/sandbox-name-hash',
};
const TERMINAL_LIKE = new Set(['TemplateNotFound', 'WarmPoolNotFound', 'InvalidMetadata', 'EnvVarsInjectionRejected', 'VolumeClaimTemplatesError', 'ClaimExpired', 'SandboxExpired']);

// FNV-1a 32-bit, 8 hex chars: how upstream hashes names into label values.
export function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s)) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h.toString(16).padStart(8, '0');
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const ready = (o) => (o?.status?.conditions || []).find((c) => c.type === 'Ready');
const isReady = (o) => ready(o)?.status === 'True';
const ownedBy = (o, uid) => (o.metadata.ownerReferences || []).some((r) => r.uid === uid);
const ownerOfKind = (o, kind) => (o.metadata.ownerReferences || []).find((r) => r.kind === kind && r.controller);

function setCondition(status, cond) {
  status.conditions = status.conditions || [];
  const i = status.conditions.findIndex((c) => c.type === cond.type);
  const prev = i >= 0 ? status.conditions[i] : null;
  const next = { type: cond.type, status: cond.status, reason: cond.reason, message: cond.message || '', lastTransitionTime: prev && prev.status === cond.status ? prev.lastTransitionTime : now(), observedGeneration: cond.observedGeneration ?? 1 };
  if (i >= 0) status.conditions[i] = next; else status.conditions.push(next);
}

async function portFree(host, port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

export class Controller {
  constructor(api, opts = {}) {
    this.api = api;
    this.opts = opts;
    this.ns = opts.namespace || 'default';
    this.pods = new Map(); // sandbox name -> {rt, ip, dir, starting, down}
    this.queue = new Set();
    this.timers = new Map();
    this.faults = { neverReady: false, claimReason: null, podStartDelayMs: opts.podStartDelayMs ?? 0 };
    this.stats = { warmAdoptions: 0, coldStarts: 0 };
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abk8s-pods-'));
    // A /16 of loopback per cluster instance, so concurrent test runs do not collide.
    this.ipBase = [127, 100 + crypto.randomInt(150), crypto.randomInt(200)];
    this.ipNext = 2;
    this.stopped = false;
    api.on((ev) => this.onEvent(ev));
  }

  onEvent(ev) {
    const o = ev.object;
    const kk = ev.kindKey;
    if (kk === `${GA}/sandboxes`) {
      this.enqueue('sandbox', o.metadata.name);
      const claimRef = ownerOfKind(o, 'SandboxClaim');
      if (claimRef) this.enqueue('claim', claimRef.name);
      const poolRef = ownerOfKind(o, 'SandboxWarmPool');
      if (poolRef) this.enqueue('pool', poolRef.name);
    } else if (kk === `${GE}/sandboxclaims`) {
      if (ev.type === 'DELETED') this.gcOwned(o.metadata.uid);
      else this.enqueue('claim', o.metadata.name);
    } else if (kk === `${GE}/sandboxwarmpools`) {
      if (ev.type === 'DELETED') this.gcOwned(o.metadata.uid);
      else this.enqueue('pool', o.metadata.name);
    } else if (kk === `${GE}/sandboxtemplates`) {
      for (const p of this.api.list(GE, 'sandboxwarmpools', this.ns)) this.enqueue('pool', p.metadata.name);
      for (const c of this.api.list(GE, 'sandboxclaims', this.ns)) if (!c.status?.sandbox?.name) this.enqueue('claim', c.metadata.name);
    } else if (kk === 'gateway.networking.k8s.io/gateways' && ev.type !== 'DELETED') {
      this.enqueue('gateway', o.metadata.name, o.metadata.namespace);
    }
  }

  enqueue(kind, name, ns) {
    if (this.stopped) return;
    this.queue.add(JSON.stringify([kind, name, ns || this.ns]));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  async drain() {
    this.scheduled = false;
    const items = [...this.queue];
    this.queue.clear();
    for (const it of items) {
      const [kind, name, ns] = JSON.parse(it);
      try {
        if (kind === 'sandbox') await this.reconcileSandbox(name);
        else if (kind === 'pool') this.reconcilePool(name);
        else if (kind === 'claim') this.reconcileClaim(name);
        else if (kind === 'gateway') this.reconcileGateway(name, ns);
      } catch (e) {
        console.error(`controller: ${kind} ${name}: ${e.stack}`);
      }
    }
  }

  gcOwned(uid) {
    for (const s of this.api.list(GA, 'sandboxes', this.ns)) {
      if (ownedBy(s, uid)) this.api.remove(GA, 'sandboxes', this.ns, s.metadata.name);
    }
  }

  timer(key, atMs, fn) {
    clearTimeout(this.timers.get(key));
    const t = setTimeout(() => { this.timers.delete(key); fn(); }, Math.max(0, atMs - Date.now()) + 5);
    this.timers.set(key, t);
  }

  // ---- Sandboxes and their "pods" ----
  async allocIp() {
    for (let i = 0; i < 200; i++) {
      const n = this.ipNext++;
      const ip = `${this.ipBase[0]}.${this.ipBase[1]}.${this.ipBase[2] + Math.floor(n / 250)}.${(n % 250) + 2}`;
      if (await portFree(ip, this.opts.podPort || 8888)) return ip;
    }
    throw new Error('no free loopback address for a pod');
  }

  // opts.isolatePods: each runtime runs in an isolated "pod" (runtime.mjs) built from the
  // Sandbox's pod template: the first container's first volumeMount is where the pod's
  // directory appears (and the runtime's --base-dir), securityContext.runAsUser (container,
  // else pod) is the user it runs as.
  podIsolation(name) {
    if (!this.opts.isolatePods) return null;
    const spec = this.api.get(GA, 'sandboxes', this.ns, name)?.spec?.podTemplate?.spec || {};
    const c = spec.containers?.[0] || {};
    return {
      rootDir: path.join(this.dir, `${name}.root`),
      mountPath: c.volumeMounts?.[0]?.mountPath || '/app',
      runAsUser: c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser ?? 0,
    };
  }

  async startPod(name) {
    const pod = { starting: true, ip: null, rt: null, dir: path.join(this.dir, name), isolation: this.podIsolation(name) };
    this.pods.set(name, pod);
    fs.mkdirSync(pod.dir, { recursive: true });
    if (this.faults.podStartDelayMs) await new Promise((r) => setTimeout(r, this.faults.podStartDelayMs));
    if (this.faults.neverReady) {
      pod.starting = false;
      pod.neverReady = true;
      return;
    }
    for (let attempt = 0; attempt < 5 && !pod.rt; attempt++) {
      const ip = await this.allocIp();
      try {
        pod.rt = await startRuntime({ baseDir: pod.dir, host: ip, port: this.opts.podPort || 8888, timeout: this.opts.runtimeTimeout, pod: pod.isolation });
        pod.ip = ip;
      } catch (e) {
        if (attempt === 4) throw e;
      }
    }
    pod.starting = false;
    if (this.stopped || this.pods.get(name) !== pod || !this.api.get(GA, 'sandboxes', this.ns, name)) {
      await pod.rt?.stop();
      return;
    }
    pod.rt.proc.on('exit', () => { if (this.pods.get(name) === pod && !pod.stopping) { pod.down = true; this.enqueue('sandbox', name); } });
  }

  async stopPod(name, removeFiles = true) {
    const pod = this.pods.get(name);
    if (!pod) return;
    this.pods.delete(name);
    pod.stopping = true;
    await pod.rt?.stop();
    if (removeFiles) fs.rmSync(pod.dir, { recursive: true, force: true });
    if (pod.isolation) fs.rmSync(pod.isolation.rootDir, { recursive: true, force: true });
  }

  async killRuntime(name, restartAfterMs = 200) {
    const pod = this.pods.get(name);
    if (!pod?.rt) return false;
    pod.stopping = true;
    await pod.rt.kill('SIGKILL');
    pod.down = true;
    pod.stopping = false;
    this.enqueue('sandbox', name);
    setTimeout(async () => {
      if (this.stopped || this.pods.get(name) !== pod) return;
      try {
        pod.rt = await startRuntime({ baseDir: pod.dir, host: pod.ip, port: this.opts.podPort || 8888, timeout: this.opts.runtimeTimeout, pod: pod.isolation });
        pod.down = false;
        pod.rt.proc.on('exit', () => { if (this.pods.get(name) === pod && !pod.stopping) { pod.down = true; this.enqueue('sandbox', name); } });
        this.enqueue('sandbox', name);
      } catch (e) { console.error(`restart of ${name} failed: ${e.message}`); }
    }, restartAfterMs);
    return true;
  }

  async reconcileSandbox(name) {
    const sb = this.api.get(GA, 'sandboxes', this.ns, name);
    if (!sb) return this.stopPod(name);
    const st = sb.status || {};
    const gen = sb.metadata.generation;
    const shutdown = sb.spec?.shutdownTime ? Date.parse(sb.spec.shutdownTime) : 0;
    if (shutdown && shutdown <= Date.now()) {
      await this.stopPod(name);
      if (sb.spec.shutdownPolicy === 'Delete') { this.api.remove(GA, 'sandboxes', this.ns, name); return; }
      setCondition(st, { type: 'Ready', status: 'False', reason: 'SandboxExpired', message: 'Sandbox has expired', observedGeneration: gen });
      st.podIPs = undefined;
      return this.writeStatus(GA, 'sandboxes', sb, st);
    }
    if (shutdown) this.timer(`sandbox/${name}`, shutdown, () => this.enqueue('sandbox', name));
    let pod = this.pods.get(name);
    if (!pod) {
      setCondition(st, { type: 'Ready', status: 'False', reason: 'DependenciesNotReady', message: 'Pod does not exist yet', observedGeneration: gen });
      this.writeStatus(GA, 'sandboxes', sb, st);
      const start = this.startPod(name).then(() => this.enqueue('sandbox', name), (e) => console.error(`pod ${name}: ${e.message}`));
      this.starting = (this.starting || new Set()).add(start);
      start.finally(() => this.starting.delete(start));
      return;
    }
    if (pod.starting) return;
    const cur = this.api.get(GA, 'sandboxes', this.ns, name);
    if (!cur) return;
    const s2 = cur.status || {};
    if (pod.neverReady) {
      setCondition(s2, { type: 'Ready', status: 'False', reason: 'DependenciesNotReady', message: 'Pod exists with phase: Pending; Pod is not Ready', observedGeneration: gen });
      s2.podIPs = undefined;
    } else if (pod.down) {
      setCondition(s2, { type: 'Ready', status: 'False', reason: 'DependenciesNotReady', message: 'Pod is not Ready: container sandbox-runtime is not ready', observedGeneration: gen });
      s2.podIPs = [pod.ip];
    } else {
      setCondition(s2, { type: 'Ready', status: 'True', reason: 'DependenciesReady', message: 'Pod is Ready; Service Exists', observedGeneration: gen });
      s2.podIPs = [pod.ip];
      s2.nodeName = 'kind-worker';
      s2.selector = `${L.nameHash}=${fnv1a(name)}`;
      if (cur.spec?.service) { s2.service = name; s2.serviceFQDN = `${name}.${this.ns}.svc.cluster.local`; }
    }
    this.writeStatus(GA, 'sandboxes', cur, s2);
  }

  writeStatus(group, plural, obj, status) {
    const clean = JSON.parse(JSON.stringify(status));
    const stored = this.api.get(group, plural, this.ns, obj.metadata.name);
    if (!stored || JSON.stringify(clean) === JSON.stringify(stored.status || {})) return;
    obj.status = clean;
    this.api.replace(group, plural, this.ns, obj.metadata.name, obj, { statusOnly: true });
  }

  podIpOf(name) { const p = this.pods.get(name); return p && p.rt && !p.down ? p.ip : null; }

  // ---- Warm pools ----
  blueprint(tpl) {
    const spec = JSON.parse(JSON.stringify(tpl.spec || {}));
    const out = { podTemplate: spec.podTemplate || { spec: { containers: [] } } };
    if (spec.volumeClaimTemplates) out.volumeClaimTemplates = spec.volumeClaimTemplates;
    if (spec.service !== undefined) out.service = spec.service;
    out.podTemplate.spec = out.podTemplate.spec || {};
    if (out.podTemplate.spec.automountServiceAccountToken === undefined) out.podTemplate.spec.automountServiceAccountToken = false;
    return out;
  }

  poolMembers(pool) {
    const h = fnv1a(pool.metadata.name);
    return this.api.list(GA, 'sandboxes', this.ns).filter((s) => s.metadata.labels?.[L.warmPool] === h && ownedBy(s, pool.metadata.uid))
      .sort((a, b) => (a.metadata.creationTimestamp < b.metadata.creationTimestamp ? -1 : a.metadata.creationTimestamp > b.metadata.creationTimestamp ? 1 : Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion)));
  }

  reconcilePool(name) {
    const pool = this.api.get(GE, 'sandboxwarmpools', this.ns, name);
    if (!pool) return;
    const want = pool.spec?.replicas ?? 1;
    const tplName = pool.spec?.sandboxTemplateRef?.name;
    const tpl = tplName && this.api.get(GE, 'sandboxtemplates', this.ns, tplName);
    let members = this.poolMembers(pool);
    if (tpl) {
      for (let i = members.length; i < want; i++) {
        this.api.create(GA, 'sandboxes', this.ns, {
          apiVersion: `${GA}/v1beta1`, kind: 'Sandbox',
          metadata: {
            generateName: `${name}-`,
            labels: { [L.warmPool]: fnv1a(name), [L.launchType]: 'warm', [L.createdBy]: 'controller', 'agents.x-k8s.io/sandbox-template-ref-hash': fnv1a(tplName) },
            annotations: { [L.templateRef]: tplName },
            ownerReferences: [{ apiVersion: pool.apiVersion, kind: 'SandboxWarmPool', name, uid: pool.metadata.uid, controller: true, blockOwnerDeletion: true }],
          },
          spec: this.blueprint(tpl),
        });
      }
      for (const extra of members.slice(want)) this.api.remove(GA, 'sandboxes', this.ns, extra.metadata.name);
      members = this.poolMembers(pool);
    }
    const status = {
      replicas: members.length,
      readyReplicas: members.filter(isReady).length,
      selector: `${L.warmPool}=${fnv1a(name)}`,
      observedGeneration: pool.metadata.generation,
    };
    this.writeStatus(GE, 'sandboxwarmpools', pool, status);
  }

  // ---- Claims ----
  failClaim(claim, reason, message) {
    const st = claim.status || {};
    setCondition(st, { type: 'Ready', status: 'False', reason, message, observedGeneration: claim.metadata.generation });
    this.writeStatus(GE, 'sandboxclaims', claim, st);
  }

  validateMetadata(claim) {
    const md = claim.spec?.additionalPodMetadata;
    if (!md) return null;
    for (const [k, v] of Object.entries(md.labels || {})) {
      if (k === 'app' && v === 'sandbox-router') return 'label app=sandbox-router is reserved';
      if (typeof v !== 'string' || v.length > 63) return `label ${k} value must be no more than 63 characters`;
    }
    for (const k of Object.keys(md.annotations || {})) {
      const dom = k.includes('/') ? k.split('/')[0] : '';
      if (k === 'cluster-autoscaler.kubernetes.io/safe-to-evict') continue;
      if (/(^|\.)kubernetes\.io$|(^|\.)k8s\.io$|(^|\.)x-k8s\.io$/.test(dom)) return `annotation ${k} uses a restricted domain`;
    }
    return null;
  }

  reconcileClaim(name) {
    const claim = this.api.get(GE, 'sandboxclaims', this.ns, name);
    if (!claim) return;
    const gen = claim.metadata.generation;
    const lc = claim.spec?.lifecycle;
    const expiry = lc?.shutdownTime ? Date.parse(lc.shutdownTime) : 0;
    const boundName = claim.status?.sandbox?.name || claim.metadata.annotations?.[L.sandboxName];
    if (expiry && expiry <= Date.now()) {
      if (lc.shutdownPolicy === 'Delete' || lc.shutdownPolicy === 'DeleteForeground') {
        this.api.remove(GE, 'sandboxclaims', this.ns, name);
        return;
      }
      if (boundName) this.api.remove(GA, 'sandboxes', this.ns, boundName);
      return this.failClaim(claim, 'ClaimExpired', 'Claim has expired');
    }
    if (expiry) this.timer(`claim/${name}`, expiry, () => this.enqueue('claim', name));

    if (boundName) {
      const sb = this.api.get(GA, 'sandboxes', this.ns, boundName);
      const st = claim.status || {};
      st.sandbox = { name: boundName, ...(sb?.status?.podIPs ? { podIPs: sb.status.podIPs } : {}) };
      if (!sb) setCondition(st, { type: 'Ready', status: 'False', reason: 'SandboxMissing', message: `Sandbox "${boundName}" not found`, observedGeneration: gen });
      else {
        const r = ready(sb);
        setCondition(st, r ? { type: 'Ready', status: r.status, reason: r.reason, message: r.message, observedGeneration: gen } : { type: 'Ready', status: 'False', reason: 'SandboxNotReady', message: 'Sandbox is not ready', observedGeneration: gen });
      }
      return this.writeStatus(GE, 'sandboxclaims', claim, st);
    }
    if (claim.status?.conditions?.some((c) => c.type === 'Ready' && TERMINAL_LIKE.has(c.reason))) return;

    const forced = this.faults.claimReason;
    if (forced && forced.count > 0) {
      forced.count--;
      return this.failClaim(claim, forced.reason, forced.message || `injected: ${forced.reason}`);
    }
    const bad = this.validateMetadata(claim);
    if (bad) return this.failClaim(claim, 'InvalidMetadata', bad);

    // Which pool and template (v1beta1: warmPoolRef; v1alpha1: sandboxTemplateRef + warmpool).
    let pool = null, tplName;
    const alpha = !!claim.spec?.sandboxTemplateRef;
    if (!alpha) {
      const pn = claim.spec?.warmPoolRef?.name;
      pool = this.api.get(GE, 'sandboxwarmpools', this.ns, pn);
      if (!pool) return this.failClaim(claim, 'WarmPoolNotFound', `SandboxWarmPool "${pn}" not found`);
      tplName = pool.spec?.sandboxTemplateRef?.name;
    } else {
      tplName = claim.spec.sandboxTemplateRef.name;
      const wp = claim.spec.warmpool ?? 'default';
      if (wp !== 'none') {
        if (wp === 'default') pool = this.api.list(GE, 'sandboxwarmpools', this.ns).find((p) => p.spec?.sandboxTemplateRef?.name === tplName) || null;
        else {
          pool = this.api.get(GE, 'sandboxwarmpools', this.ns, wp);
          if (!pool) return this.failClaim(claim, 'WarmPoolNotFound', `SandboxWarmPool "${wp}" not found`);
        }
      }
    }
    const tpl = tplName && this.api.get(GE, 'sandboxtemplates', this.ns, tplName);
    if (!tpl) return this.failClaim(claim, 'TemplateNotFound', `SandboxTemplate "${tplName}" not found`);
    const hasEnv = (claim.spec?.env || []).length > 0;
    const hasVct = (claim.spec?.volumeClaimTemplates || []).length > 0;
    if (hasEnv && !['Allowed', 'Overrides'].includes(tpl.spec?.envVarsInjectionPolicy)) return this.failClaim(claim, 'EnvVarsInjectionRejected', 'template does not allow env injection');
    if (hasVct && !['Allowed', 'Overrides'].includes(tpl.spec?.volumeClaimTemplatesPolicy)) return this.failClaim(claim, 'VolumeClaimTemplatesError', 'template does not allow volumeClaimTemplates');

    const ownerRef = { apiVersion: claim.apiVersion, kind: 'SandboxClaim', name, uid: claim.metadata.uid, controller: true, blockOwnerDeletion: true };
    const createdBy = claim.metadata.labels?.[L.createdBy];
    let sbName = null;
    // 2) a Sandbox named like the claim (an earlier cold start)
    if (this.api.get(GA, 'sandboxes', this.ns, name)) sbName = name;
    // 4) a warm candidate, Ready first, FIFO
    if (!sbName && pool && !hasEnv && !hasVct) {
      const cand = this.poolMembers(pool).find(isReady);
      if (cand) {
        sbName = cand.metadata.name;
        this.api.update(GA, 'sandboxes', this.ns, sbName, (s) => {
          delete s.metadata.labels[L.warmPool];
          delete s.metadata.labels['agents.x-k8s.io/sandbox-template-ref-hash'];
          s.metadata.labels[L.launchType] = 'warm';
          s.metadata.labels[L.claimUid] = claim.metadata.uid;
          if (createdBy) s.metadata.labels[L.createdBy] = createdBy;
          s.metadata.annotations = { ...(s.metadata.annotations || {}), [L.podName]: sbName };
          s.metadata.ownerReferences = [ownerRef];
          return s;
        });
        this.api.update(GE, 'sandboxclaims', this.ns, name, (c) => {
          c.metadata.annotations = { ...(c.metadata.annotations || {}), [L.sandboxName]: sbName };
          return c;
        });
        this.stats.warmAdoptions++;
        this.enqueue('pool', pool.metadata.name);
      }
    }
    // 5) cold start from the template
    if (!sbName) {
      const labels = { [L.launchType]: 'cold', [L.claimUid]: claim.metadata.uid };
      if (createdBy) labels[L.createdBy] = createdBy;
      const spec = this.blueprint(tpl);
      if (hasEnv) spec.podTemplate.spec.containers?.forEach((c) => { c.env = [...(c.env || []), ...claim.spec.env.filter((e) => !e.containerName || e.containerName === c.name).map(({ name: n, value }) => ({ name: n, value }))]; });
      const r = this.api.create(GA, 'sandboxes', this.ns, {
        apiVersion: `${GA}/v1beta1`, kind: 'Sandbox',
        metadata: { name, labels, annotations: { [L.templateRef]: tplName }, ownerReferences: [ownerRef] },
        spec,
      });
      if (r.error) return this.failClaim(claim, 'ReconcilerError', `Error seen: sandbox "${name}" could not be created`);
      sbName = name;
      this.stats.coldStarts++;
    }
    const fresh = this.api.get(GE, 'sandboxclaims', this.ns, name);
    if (!fresh) return;
    const sb = this.api.get(GA, 'sandboxes', this.ns, sbName);
    const st = fresh.status || {};
    st.sandbox = { name: sbName, ...(sb?.status?.podIPs ? { podIPs: sb.status.podIPs } : {}) };
    const r = ready(sb);
    setCondition(st, r ? { type: 'Ready', status: r.status, reason: r.reason, message: r.message, observedGeneration: gen } : { type: 'Ready', status: 'False', reason: 'SandboxNotReady', message: 'Sandbox is not ready', observedGeneration: gen });
    this.writeStatus(GE, 'sandboxclaims', fresh, st);
  }

  // ---- Gateways: the "load balancer" gets the router's address ----
  reconcileGateway(name, ns) {
    const gw = this.api.get('gateway.networking.k8s.io', 'gateways', ns, name);
    if (!gw || !this.opts.gatewayAddress) return;
    const st = { ...(gw.status || {}), addresses: [{ type: 'IPAddress', value: this.opts.gatewayAddress }] };
    if (this.faults.gatewayNoAddress) st.addresses = [];
    if (JSON.stringify(gw.status || {}) === JSON.stringify(st)) return;
    gw.status = st;
    this.api.replace('gateway.networking.k8s.io', 'gateways', ns, name, gw, { statusOnly: true });
  }

  async stop() {
    this.stopped = true;
    await Promise.allSettled([...(this.starting || [])]); /* pods still starting stop themselves */
    for (const t of this.timers.values()) clearTimeout(t);
    await Promise.all([...this.pods.keys()].map((n) => this.stopPod(n)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
