#!/usr/bin/env node
// cluster.mjs - run the test cluster as a child process of a test (C unit tests, the golden
// test driver, bench):
//   node tests/k8s/cluster.mjs --info-file F [--tls [--tls-name NAME]] [--versions v1alpha1] [--warm N]
//                              [--router-token T] [--pod-start-delay MS] [--bookmark-ms MS]
//                              [--isolated-pods [--pod-uid N] [--pod-workspace PATH]]
// Writes the connection info as JSON to F (atomically) once everything listens. Exits when
// stdin reaches EOF (the parent died or closed the pipe) or on SIGTERM/SIGINT, stopping every
// runtime it started, so it never outlives its test.
import fs from 'node:fs';
import { startCluster } from './lib/cluster.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const flag = (name) => args.includes(name);

const infoFile = opt('--info-file');
if (!infoFile) { console.error('usage: cluster.mjs --info-file F [...]'); process.exit(2); }

const cluster = await startCluster({
  tls: flag('--tls'),
  tlsName: opt('--tls-name'),
  servedVersions: opt('--versions') ? opt('--versions').split(',') : undefined,
  warmReplicas: opt('--warm') !== undefined ? Number(opt('--warm')) : undefined,
  routerToken: opt('--router-token'),
  podStartDelayMs: opt('--pod-start-delay') !== undefined ? Number(opt('--pod-start-delay')) : undefined,
  bookmarkMs: opt('--bookmark-ms') !== undefined ? Number(opt('--bookmark-ms')) : undefined,
  runtimeTimeout: opt('--runtime-timeout'),
  noCrds: flag('--no-crds'),
  isolatePods: flag('--isolated-pods'),
  podUid: opt('--pod-uid') !== undefined ? Number(opt('--pod-uid')) : undefined,
  podWorkspace: opt('--pod-workspace'),
});
fs.writeFileSync(infoFile + '.tmp', JSON.stringify(cluster.info, null, 2));
fs.renameSync(infoFile + '.tmp', infoFile);

let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  // Past 5 s (a pod still starting, a client holding a connection open) exit anyway: the
  // runtimes are killed by runtime.mjs's exit handler; remove the cluster's directories
  // first, which cluster.stop() would have done.
  const t = setTimeout(() => {
    for (const d of [cluster.info.dir, cluster.controller.dir]) fs.rmSync(d, { recursive: true, force: true });
    process.exit(code);
  }, 5000);
  try { await cluster.stop(); } catch (e) { console.error(e); }
  clearTimeout(t);
  process.exit(code);
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
process.stdin.on('end', () => stop(0));
process.stdin.on('error', () => stop(0));
process.stdin.resume();
