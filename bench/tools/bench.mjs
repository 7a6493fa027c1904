// bench.mjs - per-tool latency through MCP over stdio, agentbox next to the reference
// filesystem server (@modelcontextprotocol/server-filesystem, npm), in the same run, driven
// by the same client: the official TypeScript SDK (Client + StdioClientTransport), one
// tools/call at a time, timed from the call to its result in the client.
//
//   node bench/tools/bench.mjs [--iterations N] [--warmup N] [--json]
//   (bench/tools/run.sh builds the release tree and runs this)
//
// Both servers get the same fixture: 100 Python files of 100 lines in 10 packages, plus
// docs. Operations (agentbox tool | server-filesystem tool):
//   read     read {path}                       | read_text_file {path}      (a 100-line file, whole)
//   write    write {path, content 1 KiB}       | write_file {path, content}
//   edit     edit {old_string, new_string}     | edit_file {edits:[{oldText,newText}]}
//   ls       ls {path} (10 entries)            | list_directory {path}
//   glob     glob {pattern: "**/*.py"} (100)   | search_files {pattern: "**/*.py"}
//   grep     grep {pattern} (literal, 1 hit)   | (none: the reference server has no content search)
//   execute  execute {command: "true"}         | (none)
// Each iteration runs every operation on both servers back to back (A then B, alternating
// the order), so drift in the machine's load hits both alike. agentbox runs sandboxed (the
// local provider: namespaces, a helper process per sandbox); the reference server reads the
// host filesystem in its own process. Medians and p90 in milliseconds; ratio = agentbox
// median / reference median.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const root = path.resolve(import.meta.dirname, '../..');
const jsDir = path.join(root, 'tests/js');
const sdk = (p) => import(path.join(jsDir, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p));
const { Client } = await sdk('client/index.js');
const { StdioClientTransport } = await sdk('client/stdio.js');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };
const N = opt('--iterations', 200);
const WARMUP = opt('--warmup', 20);
const JSON_OUT = args.includes('--json');
const bin = process.env.AGENTBOX_BIN || path.join(root, 'build/agentbox');
const fsServer = path.join(jsDir, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
for (const f of [bin, fsServer]) if (!fs.existsSync(f)) { console.error(`missing ${f} (make build; scripts/js-deps.sh)`); process.exit(1); }

// ---- fixture ----
const files = {};
for (let p = 0; p < 10; p++) {
  for (let m = 0; m < 10; m++) {
    const lines = Array.from({ length: 100 }, (_, i) => `def f_${p}_${m}_${i}(x):  # line ${i} of module ${m}`);
    if (p === 4 && m === 2) lines[60] = '# needle_42: the one line grep looks for';
    if (p === 0 && m === 0) lines[50] = 'MARKER = "A"';
    files[`src/pkg${p}/mod_${m}.py`] = lines.join('\n') + '\n';
  }
  files[`docs/pkg${p}.md`] = `# Package ${p}\n\nNotes.\n`;
}
const oneKiB = 'x'.repeat(1023) + '\n';

async function connect(command, cmdArgs) {
  const transport = new StdioClientTransport({ command, args: cmdArgs, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const client = new Client({ name: 'agentbox-bench', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  await client.listTools();
  return { client, get stderr() { return stderr; } };
}

async function call(s, name, a, meta) {
  const params = { name, arguments: a };
  if (meta) params._meta = meta;
  const r = await s.client.callTool(params, undefined, { timeout: 60000 });
  if (r.isError) throw new Error(`${name}: ${r.content?.[0]?.text}\n${s.stderr}`);
  return r;
}

// ---- servers ----
const state = fs.mkdtempSync(path.join(os.tmpdir(), 'abbench-state-'));
const fsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'abbench-fs-'));
for (const [p, t] of Object.entries(files)) {
  fs.mkdirSync(path.dirname(path.join(fsRoot, p)), { recursive: true });
  fs.writeFileSync(path.join(fsRoot, p), t);
}
fs.mkdirSync(path.join(fsRoot, 'out'));
const ab = await connect(bin, ['serve', '--stdio', '--set', `state_dir=${state}`, '--set', 'log.level=warn']);
const ref = await connect(process.execPath, [fsServer, fsRoot]);
const meta = { 'agentbox/thread_id': 'bench' };
const entries = Object.entries(files).map(([p, t]) => ({ path: `/workspace/${p}`, content: t }));
for (let i = 0; i < entries.length; i += 100) await call(ab, 'upload', { files: entries.slice(i, i + 100) }, meta);

let abMarker = 'A';
let refMarker = 'A';
const ops = [
  ['read',
    () => call(ab, 'read', { path: '/workspace/src/pkg3/mod_7.py' }, meta),
    () => call(ref, 'read_text_file', { path: path.join(fsRoot, 'src/pkg3/mod_7.py') })],
  ['write',
    () => call(ab, 'write', { path: '/workspace/out/w.txt', content: oneKiB }, meta),
    () => call(ref, 'write_file', { path: path.join(fsRoot, 'out/w.txt'), content: oneKiB })],
  ['edit',
    () => { const n = abMarker === 'A' ? 'B' : 'A'; const p = call(ab, 'edit', { path: '/workspace/src/pkg0/mod_0.py', old_string: `MARKER = "${abMarker}"`, new_string: `MARKER = "${n}"` }, meta); abMarker = n; return p; },
    () => { const n = refMarker === 'A' ? 'B' : 'A'; const p = call(ref, 'edit_file', { path: path.join(fsRoot, 'src/pkg0/mod_0.py'), edits: [{ oldText: `MARKER = "${refMarker}"`, newText: `MARKER = "${n}"` }] }); refMarker = n; return p; }],
  ['ls',
    () => call(ab, 'ls', { path: '/workspace/src/pkg5' }, meta),
    () => call(ref, 'list_directory', { path: path.join(fsRoot, 'src/pkg5') })],
  ['glob',
    () => call(ab, 'glob', { pattern: '**/*.py' }, meta),
    () => call(ref, 'search_files', { path: fsRoot, pattern: '**/*.py' })],
  ['grep', () => call(ab, 'grep', { pattern: 'needle_42' }, meta), null],
  ['execute', () => call(ab, 'execute', { command: 'true' }, meta), null],
];

// Sanity: both servers see the same fixture.
const g = await call(ab, 'glob', { pattern: '**/*.py' }, meta);
const sf = await call(ref, 'search_files', { path: fsRoot, pattern: '**/*.py' });
if (g.structuredContent.paths.length !== 100 || sf.content[0].text.split('\n').length !== 100) throw new Error('fixture mismatch');

const samples = Object.fromEntries(ops.map(([n]) => [n, { ab: [], ref: [] }]));
async function timed(fn) { const t = performance.now(); await fn(); return performance.now() - t; }
for (let it = -WARMUP; it < N; it++) {
  for (const [name, a, b] of ops) {
    const order = it % 2 === 0 ? [['ab', a], ['ref', b]] : [['ref', b], ['ab', a]];
    for (const [who, fn] of order) {
      if (!fn) continue;
      const ms = await timed(fn);
      if (it >= 0) samples[name][who].push(ms);
    }
  }
}

await ab.client.close();
await ref.client.close();
fs.rmSync(state, { recursive: true, force: true });
fs.rmSync(fsRoot, { recursive: true, force: true });

const q = (v, p) => { const s = [...v].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const rows = ops.map(([name]) => {
  const a = samples[name].ab, r = samples[name].ref;
  return {
    op: name,
    agentbox: { median: q(a, 0.5), p90: q(a, 0.9) },
    reference: r.length ? { median: q(r, 0.5), p90: q(r, 0.9) } : null,
    ratio: r.length ? q(a, 0.5) / q(r, 0.5) : null,
  };
});
if (JSON_OUT) {
  console.log(JSON.stringify({ iterations: N, warmup: WARMUP, node: process.version, rows }, null, 2));
} else {
  const f = (x) => (x === undefined || x === null ? '-' : x.toFixed(3));
  console.log(`MCP stdio, ${N} iterations (+${WARMUP} warm-up), node ${process.version}, ms`);
  console.log('| tool | agentbox median | agentbox p90 | server-filesystem median | server-filesystem p90 | ratio (median) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.op} | ${f(r.agentbox.median)} | ${f(r.agentbox.p90)} | ${f(r.reference?.median)} | ${f(r.reference?.p90)} | ${r.ratio === null ? '-' : r.ratio.toFixed(2) + 'x'} |`);
  }
}
