// goldens.mjs - replay golden tool cases through a real MCP client (the official SDK) against
// a running agentbox server, on any provider, and compare byte for byte.
//
// Two sets of cases:
//   tests/data/fsops/<case>/{case.json,expected.txt}   the file tools (format: its README.md);
//                                                     the same files the C unit test runs
//   tests/js/tools/goldens/<case>.json                 execute, execute_python, lifecycle:
//                                                     several steps, texts with placeholders
//
// Files a case needs are created through the tools themselves, so the setup is the same on
// every provider: one `upload` for the files (base64, any bytes), one `execute` for
// directories, symlinks and the case's "deny" prefixes (chmod 000: the sandbox user is not
// root, so the kernel refuses access with EACCES, which is what a denied path is). Paths and
// link targets reach the shell as environment variables, never spliced into the command.
// Files are checked afterwards the same way (`execute` printing base64).
//
// Each case runs in a sandbox of its own (thread id "golden-<case>") that is deleted at the
// end, so cases cannot see each other's files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { SOURCE_DIR, textOf } from './server.mjs';

export const FSOPS_DIR = path.join(SOURCE_DIR, 'tests/data/fsops');
export const TOOL_GOLDENS_DIR = path.join(SOURCE_DIR, 'tests/js/tools/goldens');
const WS = '/workspace';

// case.json "limits" keys -> config keys.
const LIMIT_KEYS = {
  read_max_bytes: 'tools.read.max_bytes',
  read_max_binary_bytes: 'tools.read.max_binary_bytes',
  upload_max_bytes: 'tools.upload.max_bytes',
  download_max_bytes: 'tools.download.max_bytes',
  grep_max_count: 'tools.grep.max_count',
  glob_max_matches: 'tools.glob.max_matches',
};

export function limitSets(limits) {
  const s = {};
  for (const [k, v] of Object.entries(limits || {})) {
    if (!LIMIT_KEYS[k]) throw new Error(`unknown limit ${k}`);
    s[LIMIT_KEYS[k]] = String(v);
  }
  return s;
}

export function loadFsopsCases() {
  return fs.readdirSync(FSOPS_DIR).sort()
    .filter((n) => fs.existsSync(path.join(FSOPS_DIR, n, 'case.json')))
    .map((name) => ({
      name,
      c: JSON.parse(fs.readFileSync(path.join(FSOPS_DIR, name, 'case.json'), 'utf8')),
      expected: fs.readFileSync(path.join(FSOPS_DIR, name, 'expected.txt')),
    }));
}

export function loadToolCases() {
  return fs.readdirSync(TOOL_GOLDENS_DIR).sort()
    .filter((n) => n.endsWith('.json'))
    .map((f) => ({ name: f.slice(0, -5), c: JSON.parse(fs.readFileSync(path.join(TOOL_GOLDENS_DIR, f), 'utf8')) }));
}

// Group cases by the server configuration they need (limits / config), preserving order.
export function groupBy(cases, keyOf) {
  const m = new Map();
  for (const c of cases) {
    const k = JSON.stringify(keyOf(c));
    if (!m.has(k)) m.set(k, { sets: keyOf(c), cases: [] });
    m.get(k).cases.push(c);
  }
  return [...m.values()];
}

// ---- file setup and checks through the tools ----

function rel(p) {
  if (p === WS) return '.';
  if (!p.startsWith(WS + '/')) throw new Error(`golden path ${p} is not under ${WS}`);
  return p.slice(WS.length + 1);
}

export function entryBytes(e) {
  if (typeof e.text === 'string') return Buffer.from(e.text, 'utf8');
  if (typeof e.base64 === 'string') return Buffer.from(e.base64, 'base64');
  if (typeof e.repeat === 'string') return Buffer.from(e.repeat.repeat(e.times), 'utf8');
  return null;
}

function okExec(r, what) {
  const t = textOf(r);
  if (r.isError || r.structuredContent?.exit_code !== 0) throw new Error(`${what} failed: ${t}`);
  return r.structuredContent.output;
}

// Create files/dirs/symlinks and apply deny prefixes in the calling thread's sandbox.
export async function setupFiles(srv, meta, files = [], deny = []) {
  const uploads = [];
  for (const e of files) {
    const b = entryBytes(e);
    if (b) uploads.push({ path: e.path, content_base64: b.toString('base64') });
  }
  // upload takes at most 100 files a call (its inputSchema's maxItems).
  for (let k = 0; k < uploads.length; k += 100) {
    const r = await srv.call('upload', { files: uploads.slice(k, k + 100) }, meta);
    const bad = (r.structuredContent?.files || []).filter((f) => f.error);
    if (r.isError || bad.length) throw new Error(`setup upload failed: ${textOf(r)}`);
  }
  const env = {};
  const lines = ['set -e'];
  let i = 0;
  for (const e of files) {
    if (e.dir === true) {
      env[`P${i}`] = rel(e.path);
      lines.push(`mkdir -p -- "$P${i}"`);
    } else if (typeof e.symlink === 'string') {
      env[`P${i}`] = rel(e.path);
      env[`T${i}`] = e.symlink;
      lines.push(`mkdir -p -- "$(dirname -- "$P${i}")"`, `ln -s -- "$T${i}" "$P${i}"`);
    }
    i++;
  }
  for (const d of deny) {
    env[`P${i}`] = rel(d);
    lines.push(`mkdir -p -- "$P${i}"`, `chmod 000 -- "$P${i}"`);
    i++;
  }
  if (lines.length > 1) okExec(await srv.call('execute', { command: lines.join('\n'), env }, meta), 'setup');
}

// Bytes of each path (null = absent), after lifting the deny prefixes so they can be read.
export async function readBack(srv, meta, paths, deny = []) {
  const env = {};
  const lines = [];
  deny.forEach((d, k) => { env[`D${k}`] = rel(d); lines.push(`chmod 700 -- "$D${k}" 2>/dev/null || true`); });
  paths.forEach((p, k) => {
    env[`P${k}`] = rel(p);
    lines.push(`if [ -e "$P${k}" ] || [ -L "$P${k}" ]; then printf 'F'; base64 -w0 -- "$P${k}"; echo; else echo A; fi`);
  });
  const out = okExec(await srv.call('execute', { command: lines.join('\n'), env }, meta), 'read-back');
  const rows = out.split('\n').slice(0, paths.length);
  return rows.map((row) => (row[0] === 'F' ? Buffer.from(row.slice(1), 'base64') : null));
}

// ---- comparisons ----

// expected is a subset of actual (objects: listed keys; arrays: same length, element-wise).
export function subsetDiff(expected, actual, where = '') {
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return `${where || '.'}: expected an object, got ${JSON.stringify(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      const d = subsetDiff(v, actual[k], `${where}.${k}`);
      if (d) return d;
    }
    return null;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${where}: expected ${expected.length} items, got ${JSON.stringify(actual)?.slice(0, 300)}`;
    for (let i = 0; i < expected.length; i++) {
      const d = subsetDiff(expected[i], actual[i], `${where}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  return expected === actual ? null : `${where}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)?.slice(0, 300)}`;
}

export function assertBytes(actualText, expectedBuf, label) {
  const a = Buffer.from(actualText, 'utf8');
  if (Buffer.compare(a, expectedBuf) === 0) return;
  let k = 0;
  while (k < a.length && k < expectedBuf.length && a[k] === expectedBuf[k]) k++;
  assert.fail(`${label}: text differs at byte ${k}\n--- expected (${expectedBuf.length} bytes)\n${expectedBuf.toString('utf8').slice(0, 3000)}\n--- got (${a.length} bytes)\n${actualText.slice(0, 3000)}\n---`);
}

// ---- cases whose text depends on the sandbox's own root filesystem ----
// The goldens were made on a test provider whose root holds only /workspace. In a real
// sandbox the root is a system image, so these texts are derived from what the sandbox
// itself shows through `execute` (an independent path: the shell, not the file tools),
// in the format of the golden.
const pyStr = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const ENVIRONMENT_CASES = {
  // ls of "/": the sandbox's root entries, sorted by name.
  async ls_root(srv, meta) {
    const out = okExec(await srv.call('execute', { command: 'LC_ALL=C ls -A1 /' }, meta), 'ls /');
    const names = out.split('\n').filter(Boolean).sort();
    return Buffer.from(`[${names.map((n) => pyStr('/' + n)).join(', ')}]`);
  },
  // A symlink to /../../../../etc/hostname resolves inside the sandbox: the text is the
  // sandbox's own /etc/hostname (on the local provider "sandbox", not the host's), or
  // file_not_found where the sandbox has none.
  async read_symlink_contained(srv, meta) {
    const out = okExec(await srv.call('execute', { command: 'if [ -r /etc/hostname ]; then printf H; cat /etc/hostname; fi' }, meta), 'cat /etc/hostname');
    if (!out.startsWith('H')) return null;
    if (srv.provider === 'local' && fs.existsSync('/etc/hostname')) {
      assert.notEqual(out.slice(1), fs.readFileSync('/etc/hostname', 'utf8'), 'the sandbox sees the host\'s /etc/hostname');
    }
    const lines = out.slice(1).replace(/\n$/, '').split('\n');
    return Buffer.from(lines.map((l, i) => `${String(i + 1).padStart(String(lines.length).length)}  ${l}`).join('\n'));
  },
};

// ---- one fsops case ----

export async function runFsopsCase(srv, { name, c, expected }) {
  const meta = { thread: `golden-${name}` };
  try {
    await setupFiles(srv, meta, c.files, c.deny);
    const r = await srv.call(c.tool, c.args, meta);
    if (r.content?.[0]?.type !== 'text') {
      // Media reads: the result is the media block alone (deepagents: "a multimodal content
      // block", no text); expected.txt is fsops' summary, which MCP clients never see.
      assert.ok(c.content, `${name}: a result without a text block: ${JSON.stringify(r).slice(0, 500)}`);
      const d = subsetDiff(c.content, r.content) || subsetDiff(c.structured || {}, r.structuredContent);
      if (d) assert.fail(`${name}: ${d}`);
      return;
    }
    const text = textOf(r);
    const envText = ENVIRONMENT_CASES[name] ? await ENVIRONMENT_CASES[name](srv, meta) : null;
    if (c.input_valid === false) {
      // The MCP layer validates arguments against the inputSchema before the tool runs
      // (MCP 2025-11-25, tools: input validation errors are tool execution errors).
      assert.equal(r.isError, true, `${name}: invalid arguments were accepted: ${text}`);
      assert.match(text, new RegExp(`^Invalid arguments for tool ${c.tool}: `), name);
    } else {
      assertBytes(text, envText || expected, `${name} [${srv.provider}]`);
      // An environment-derived text is a success (a listing, a file's content).
      const isError = envText ? false : c.is_error;
      if (typeof isError === 'boolean') assert.equal(!!r.isError, isError, `${name}: isError`);
      if (r.isError) assert.equal(r.structuredContent, undefined, `${name}: an error result carries structuredContent`);
      else assert.ok(r.structuredContent, `${name}: a success result has no structuredContent`);
      if (c.structured && !envText) {
        const d = subsetDiff(c.structured, r.structuredContent);
        if (d) assert.fail(`${name}: structuredContent ${d}\n${JSON.stringify(r.structuredContent).slice(0, 2000)}`);
      }
      if (c.content) {
        const d = subsetDiff(c.content, r.content);
        if (d) assert.fail(`${name}: content ${d}`);
      } else {
        assert.equal(r.content.length, 1, `${name}: unexpected content blocks ${JSON.stringify(r.content).slice(0, 500)}`);
      }
    }
    const after = c.after || [];
    if (after.length) {
      const got = await readBack(srv, meta, after.map((a) => a.path), c.deny);
      after.forEach((a, k) => {
        if (a.absent) assert.equal(got[k], null, `${name}: ${a.path} should not exist`);
        else {
          assert.ok(got[k], `${name}: ${a.path} is missing after the call`);
          assert.ok(Buffer.compare(got[k], entryBytes(a)) === 0, `${name}: after the call ${a.path} holds ${JSON.stringify(got[k].toString('latin1').slice(0, 200))}`);
        }
      });
    }
  } finally {
    await deleteThread(srv, meta);
  }
}

export async function deleteThread(srv, meta) {
  const r = await srv.call('sandbox_delete', {}, meta);
  if (r.isError && !/has no sandbox/.test(textOf(r))) throw new Error(`sandbox_delete failed: ${textOf(r)}`);
}

// ---- templated texts (tool goldens) ----

// A template is the exact text with placeholders:
//   {{ID}} / {{ID:x}}      a sandbox id (ab- + 20 hex); a named one must be equal wherever it recurs
//   {{TIME}}               an RFC 3339 UTC time (2026-01-02T03:04:05Z)
//   {{PROVIDER}}           the provider kind (local, agent-sandbox)
//   {{INT}}                a decimal integer
//   {{HEX}}                lowercase hex digits (a generated thread id)
//   {{BOOL}}               true or false
//   {{START}}              warm or cold (depends on the pool's state at that moment)
//   {{ANY}}                any text (non-greedy), for values that are provider-specific
// Returns null when text matches, else a description.
export function matchTemplate(template, text, vars, provider) {
  const re = /\{\{(ID|TIME|PROVIDER|INT|HEX|BOOL|START|ANY)(?::([a-z0-9_]+))?\}\}/g;
  let src = '^';
  let last = 0;
  const names = [];
  for (let m; (m = re.exec(template));) {
    src += escapeRe(template.slice(last, m.index));
    last = m.index + m[0].length;
    const pat = { ID: 'ab-[0-9a-f]{20}', TIME: '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ', PROVIDER: escapeRe(provider), INT: '-?\\d+', HEX: '[0-9a-f]+', BOOL: '(?:true|false)', START: '(?:warm|cold)', ANY: '[\\s\\S]*?' }[m[1]];
    if (m[2] && vars[m[2]] !== undefined) src += escapeRe(vars[m[2]]);
    else { src += `(${pat})`; names.push(m[2] || null); }
  }
  src += escapeRe(template.slice(last)) + '$';
  const mm = new RegExp(src).exec(text);
  if (!mm) return 'no match';
  names.forEach((n, k) => { if (n) vars[n] = mm[k + 1]; });
  return null;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// Fill a JSON value's string placeholders with bound variables (for args).
export function fillVars(v, vars) {
  if (typeof v === 'string') return v.replace(/\{\{(ID|ANY):([a-z0-9_]+)\}\}/g, (_, __, n) => { if (vars[n] === undefined) throw new Error(`unbound {{${n}}}`); return vars[n]; });
  if (Array.isArray(v)) return v.map((x) => fillVars(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fillVars(x, vars)]));
  return v;
}

// Structured subset with placeholders in string values.
function structuredDiff(expected, actual, vars, provider, where = '') {
  if (typeof expected === 'string' && expected.includes('{{')) {
    if (typeof actual !== 'string') return `${where}: expected a string, got ${JSON.stringify(actual)}`;
    return matchTemplate(expected, actual, vars, provider) ? `${where}: ${JSON.stringify(actual)} does not match ${expected}` : null;
  }
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    if (!actual || typeof actual !== 'object') return `${where}: expected an object, got ${JSON.stringify(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      const d = structuredDiff(v, actual[k], vars, provider, `${where}.${k}`);
      if (d) return d;
    }
    return null;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${where}: expected ${expected.length} items, got ${JSON.stringify(actual)?.slice(0, 300)}`;
    for (let i = 0; i < expected.length; i++) {
      const d = structuredDiff(expected[i], actual[i], vars, provider, `${where}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  return expected === actual ? null : `${where}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)?.slice(0, 300)}`;
}

// ---- one tool case (steps) ----
//   {"config": {--set pairs}, "files": [...], "deny": [...], "steps": [{"tool", "args",
//    "thread" (default: the case's own), "text" | "text_by_provider": {provider: text},
//    "is_error", "structured", "after_ms"}], "cleanup_threads": [...], "note"}
export async function runToolCase(srv, { name, c }) {
  const own = `golden-${name}`;
  const vars = {};
  const threads = new Set([own, ...(c.cleanup_threads || [])]);
  try {
    await setupFiles(srv, { thread: own }, c.files, c.deny);
    for (const [k, s] of c.steps.entries()) {
      const thread = s.thread === undefined ? own : s.thread;
      if (thread !== null) threads.add(thread);
      const meta = thread === null ? {} : { thread };
      const r = await srv.call(s.tool, fillVars(s.args || {}, vars), meta);
      const text = textOf(r);
      const label = `${name} step ${k + 1} (${s.tool}) [${srv.provider}]`;
      const template = s.text_by_provider?.[srv.provider] ?? s.text;
      if (template === undefined) assert.fail(`${label}: no expected text`);
      if (matchTemplate(template, text, vars, srv.provider)) {
        assert.fail(`${label}: text does not match\n--- expected\n${template}\n--- got\n${text}\n---`);
      }
      if (typeof s.is_error === 'boolean') assert.equal(!!r.isError, s.is_error, `${label}: isError`);
      if (r.isError) assert.equal(r.structuredContent, undefined, `${label}: an error result carries structuredContent`);
      if (s.structured) {
        const d = structuredDiff(s.structured, r.structuredContent, vars, srv.provider);
        if (d) assert.fail(`${label}: structuredContent ${d}\n${JSON.stringify(r.structuredContent).slice(0, 2000)}`);
      }
    }
  } finally {
    for (const t of threads) await deleteThread(srv, { thread: t });
    for (const id of Object.entries(vars).filter(([k]) => k.startsWith('sbx')).map(([, v]) => v)) {
      await srv.call('sandbox_delete', { sandbox_id: id }, {});
    }
  }
}
