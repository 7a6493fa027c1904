// Load test of the whole server over Streamable HTTP, loopback only, bounded in time:
// N concurrent sessions (default 1,000) spread over T conversation threads (default 50, so 50
// sandboxes, each shared by N/T sessions through the Agentbox-Thread-Id header) make mixed
// tool calls -- execute, execute_python, read, write, edit, ls, grep, glob, upload,
// download, sandbox_info -- in a closed loop with a think time (default 2 s), for D seconds (default 180).
//
// It checks, and exits non-zero when one fails:
//   - zero failed calls (HTTP errors, JSON-RPC errors, tool errors, wrong content);
//   - the server's RSS is flat after warm-up: the growth from the end of the warm-up (the
//     first third of the run: the replay rings fill for a minute) to the end stays under
//     --rss-slack MiB (default 32);
// and prints p50/p90/p99/max latency per tool, throughput, and the server's RSS, threads
// and descriptors over time (bench/README.md records a run).
//
//   AGENTBOX_BIN=build/agentbox node bench/load/load.mjs [--sessions N] [--threads T]
//       [--duration S] [--think-ms M] [--json FILE]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHttpServer } from '../../tests/js/http/lib/server.mjs';
import { openSession, post } from '../../tests/js/http/lib/http.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : def; };
const SESSIONS = Number(opt('--sessions', '1000'));
const THREADS = Number(opt('--threads', '50'));
const DURATION_S = Number(opt('--duration', '240'));
const THINK_MS = Number(opt('--think-ms', '2000'));
const RSS_SLACK_MIB = Number(opt('--rss-slack', '32'));
const JSON_OUT = opt('--json', '');
const TOKEN = 'load-token-5d0c1e9a7b3f2e68';

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

function procStats(pid) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st) || [])[1] || 0);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, threads: kb('Threads'),
    fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

// The mix, per session, in a fixed order (weights: execute 3, read 2, one each of the rest,
// execute_python and sandbox_info every other round). Each call checks its own answer.
function plan(i, k) {
  const dir = `load/s${i}`;
  const file = `${dir}/f.txt`;
  const steps = [
    ['write', { path: file, content: `hello ${i} ${k}\n` }, (t) => t.startsWith('Updated file') || t.startsWith('Wrote')],
    ['read', { path: file }, (t) => t.includes(`hello ${i} ${k}`)],
    ['execute', { command: `echo load-${i}-${k}` }, (t) => t.includes(`load-${i}-${k}\n`) && t.includes('exit code 0')],
    ['edit', { path: file, old_string: 'hello', new_string: 'hallo' }, (t) => t.includes('Successfully replaced 1')],
    ['grep', { pattern: `hallo ${i} `, path: dir, output_mode: 'content' }, (t) => t.includes(`hallo ${i} ${k}`)],
    ['ls', { path: dir }, (t) => t.includes('f.txt')],
    ['execute', { command: `cat ${file} | wc -c` }, (t) => /\d+\n/.test(t)],
    ['glob', { pattern: '*.txt', path: dir }, (t) => t.includes('f.txt')],
    ['upload', { files: [{ path: `${dir}/u.bin`, content_base64: Buffer.from(`up ${i} ${k}`).toString('base64') }] }, (t) => t.includes('Uploaded')],
    ['download', { paths: [`${dir}/u.bin`] }, () => true],
    ['read', { path: file }, (t) => t.includes(`hallo ${i} ${k}`)],
    ['execute', { command: 'ls /workspace/load | wc -l' }, (t) => t.includes('exit code 0')],
  ];
  if (k % 2 === 0) steps.push(['execute_python', { code: `print(${i} * ${k})` }, (t) => t.includes(`${i * k}\n`)]);
  else steps.push(['sandbox_info', {}, (t) => t.includes('sandbox_id:')]);
  return steps;
}

async function main() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentbox-load-'));
  const auditFile = path.join(stateDir, 'audit.log');
  log(`starting the server: ${SESSIONS} sessions, ${THREADS} threads, ${DURATION_S} s, think ${THINK_MS} ms`);
  const server = await startHttpServer({
    args: ['--set', `state_dir=${stateDir}`, '--set', 'sandbox.pool.size=4',
      '--set', `auth.tokens=${TOKEN}:load`, '--set', `audit.path=${auditFile}`,
      '--set', 'audit.max_bytes=16MiB', '--set', 'audit.keep=2',
      '--set', 'http.max_sessions=5000', '--set', 'local.limits.pids=512'],
  });
  const pid = server.proc.pid;
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const headersOf = (i) => ({ ...auth, 'Agentbox-Thread-Id': `load-thread-${i % THREADS}` });
  const lat = {};
  let failures = 0;
  const failSamples = [];
  let calls = 0;
  const fail = (what) => { failures++; if (failSamples.length < 20) failSamples.push(what); };
  const samples = [];
  const sample = (phase) => { const s = { t: (performance.now() - t0) / 1000, phase, ...procStats(pid) }; samples.push(s); return s; };
  const t0 = performance.now();

  try {
    // Open every session (in batches: connection setup is not what is measured).
    const sessions = [];
    for (let b = 0; b < SESSIONS; b += 100) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, SESSIONS - b) }, (_, j) =>
        openSession(server.url, { headers: headersOf(b + j) })));
      sessions.push(...batch);
    }
    log(`${SESSIONS} sessions open`, JSON.stringify(sample('open')));
    // One call per thread creates the 50 sandboxes (and each session's directory).
    await Promise.all(Array.from({ length: THREADS }, (_, t) => post(server.url, sessions[t].sid,
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'execute', arguments: { command: 'mkdir -p /workspace/load' } } },
      { headers: headersOf(t), timeoutMs: 120000 })));
    log('sandboxes ready', JSON.stringify(sample('ready')));

    const end = performance.now() + DURATION_S * 1000;
    const warmEnd = performance.now() + DURATION_S * 1000 / 3;
    let warmSample = null;
    const ticker = setInterval(() => {
      const s = sample(performance.now() < warmEnd ? 'warmup' : 'measure');
      if (!warmSample && performance.now() >= warmEnd) warmSample = s;
      log(`calls=${calls} failures=${failures} rss=${s.rssMiB.toFixed(1)}MiB threads=${s.threads} fds=${s.fds}`);
    }, 5000);

    let nextId = 10;
    const loop = async (i) => {
      // Spread the start so the sessions do not move in lockstep.
      await new Promise((r) => setTimeout(r, (i * 997) % Math.max(1, THINK_MS)));
      for (let k = 0; performance.now() < end; k++) {
        for (const [tool, args, ok] of plan(i, k)) {
          if (performance.now() >= end) return;
          const id = nextId++;
          const a = performance.now();
          let r;
          try {
            r = await post(server.url, sessions[i].sid,
              { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args } },
              { headers: headersOf(i), timeoutMs: 120000 });
          } catch (e) {
            fail(`${tool} session ${i}: ${e.message}`);
            continue;
          }
          const ms = performance.now() - a;
          calls++;
          const m = r.messages.find((x) => x.id === id);
          const text = m?.result?.content?.filter((c) => c.type === 'text').map((c) => c.text).join('\n') ?? '';
          if (r.status !== 200 || !m || m.error || m.result.isError || !ok(text)) {
            fail(`${tool} session ${i} round ${k}: HTTP ${r.status} ${JSON.stringify(m?.error ?? text).slice(0, 300)}`);
          }
          (lat[tool] ??= []).push(ms);
          await new Promise((res) => setTimeout(res, THINK_MS * (0.5 + ((i + k) % 10) / 10)));
        }
      }
    };
    await Promise.all(sessions.map((_, i) => loop(i)));
    clearInterval(ticker);
    const last = sample('end');
    const warm = warmSample ?? samples[0];

    // Report.
    const tools = Object.keys(lat).sort();
    const rows = tools.map((t) => {
      const s = lat[t].sort((x, y) => x - y);
      return { tool: t, n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] };
    });
    const all = Object.values(lat).flat().sort((x, y) => x - y);
    const measured = samples.filter((s) => s.phase === 'measure' || s.phase === 'end');
    const rssMax = Math.max(...measured.map((s) => s.rssMiB));
    const growth = last.rssMiB - warm.rssMiB;
    const report = {
      sessions: SESSIONS, threads: THREADS, duration_s: DURATION_S, think_ms: THINK_MS,
      calls, failures, calls_per_s: calls / DURATION_S,
      overall: { p50: pct(all, 50), p90: pct(all, 90), p99: pct(all, 99), max: all[all.length - 1] },
      tools: rows,
      rss: { after_warmup_mib: warm.rssMiB, end_mib: last.rssMiB, max_after_warmup_mib: rssMax, growth_mib: growth,
        hwm_mib: last.hwmMiB },
      threads_end: last.threads, fds_end: last.fds, samples,
      failure_samples: failSamples,
    };
    console.log('| tool | calls | p50 ms | p90 ms | p99 ms | max ms |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      console.log(`| ${r.tool} | ${r.n} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(0)} |`);
    }
    console.log(`| all | ${all.length} | ${report.overall.p50.toFixed(1)} | ${report.overall.p90.toFixed(1)} | ${report.overall.p99.toFixed(1)} | ${report.overall.max.toFixed(0)} |`);
    console.log(`\ncalls: ${calls} (${report.calls_per_s.toFixed(0)}/s), failures: ${failures}`);
    console.log(`server RSS: ${warm.rssMiB.toFixed(1)} MiB after warm-up, ${last.rssMiB.toFixed(1)} MiB at the end `
      + `(growth ${growth.toFixed(1)} MiB, max ${rssMax.toFixed(1)} MiB), threads ${last.threads}, fds ${last.fds}`);
    if (failSamples.length) console.log('first failures:\n  ' + failSamples.join('\n  '));
    if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(report, null, 2));

    let bad = false;
    if (failures) { console.log(`FAIL: ${failures} failed calls`); bad = true; }
    if (growth > RSS_SLACK_MIB) { console.log(`FAIL: RSS grew ${growth.toFixed(1)} MiB after warm-up (slack ${RSS_SLACK_MIB})`); bad = true; }
    if (calls === 0) { console.log('FAIL: no calls'); bad = true; }
    process.exitCode = bad ? 1 : 0;
  } finally {
    const e = await server.stop(60000).catch((err) => ({ err: err.message }));
    if (e.code !== 0) { console.log(`server exit: ${JSON.stringify(e)}\n${server.stderr().slice(-2000)}`); process.exitCode = 1; }
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
