// HTTP transport under load: N sessions, each with a slow tool call in flight (the
// test_elicitation fixture waits for the client), then ping latency on every session, and
// the server's memory and threads at that moment. Correctness is asserted by
// tests/js/http/http_load.test.mjs; this prints the figures recorded in bench/README.md.
//
//   AGENTBOX_BIN=build/agentbox node bench/http/sessions.mjs [--sessions N] [--json]
import fs from 'node:fs';
import { startHttpServer } from '../../tests/js/http/lib/server.mjs';
import { runLoad, summarize } from '../../tests/js/http/lib/load.mjs';
import { openSession, post } from '../../tests/js/http/lib/http.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const n = Number(opt('--sessions', '1000'));
const json = args.includes('--json');

function procStats(pid) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st) || [])[1] || 0);
  return { rssMiB: kb('VmRSS') / 1024, threads: kb('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

async function serialPings(url, sid, count) {
  const ms = [];
  for (let i = 0; i < count; i++) {
    const a = performance.now();
    const r = await post(url, sid, { jsonrpc: '2.0', id: i, method: 'ping' });
    ms.push(performance.now() - a);
    if (r.status !== 200) throw new Error(`ping HTTP ${r.status}`);
  }
  return summarize(ms);
}

const server = await startHttpServer({ args: ['--set', 'http.shutdown_grace=5s'] });
try {
  const idleBefore = procStats(server.proc.pid);
  const one = await openSession(server.url);
  const baseline = await serialPings(server.url, one.sid, 500);
  const r = await runLoad(server.url, {
    sessions: n,
    log: json ? () => {} : (m) => console.error(`# ${m}`),
    atPeak: async () => ({ ...procStats(server.proc.pid), pingWhileLoaded: await serialPings(server.url, one.sid, 500) }),
  });
  const out = { sessions: n, idle: idleBefore, baselinePing: baseline, ...r.timings, peak: r.peak };
  if (json) {
    console.log(JSON.stringify(out, null, 2));
  } else {
    const f = (s) => `p50 ${s.p50.toFixed(2)} ms, p90 ${s.p90.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, max ${s.max.toFixed(2)} ms (n=${s.n})`;
    console.log(`sessions: ${n}`);
    console.log(`open ${n} sessions (initialize + initialized, 64 at a time): ${out.openMs.toFixed(0)} ms`);
    console.log(`start ${n} slow calls (each until its elicitation/create arrives): ${out.callsInFlightMs.toFixed(0)} ms`);
    console.log(`ping, idle server, one session:           ${f(baseline)}`);
    console.log(`ping, ${n} calls in flight, one session:  ${f(out.peak.pingWhileLoaded)}`);
    console.log(`ping, ${n} calls in flight, every session: ${f(out.pingSerial)} (sequential sample)`);
    console.log(`ping, ${n} calls in flight, 128 at once:   ${f(out.pingConcurrent)}`);
    console.log(`new session + tools/call while loaded: ${out.freshCallMs.toFixed(2)} ms`);
    console.log(`answer ${n} elicitations and receive ${n} results: ${out.answerAllMs.toFixed(0)} ms`);
    console.log(`server at peak: RSS ${out.peak.rssMiB.toFixed(1)} MiB, ${out.peak.threads} threads, ${out.peak.fds} fds (idle: ${idleBefore.rssMiB.toFixed(1)} MiB, ${idleBefore.threads} threads)`);
  }
} finally {
  await server.stop(30000);
}
