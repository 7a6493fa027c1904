// runtime_compat.test.mjs - API compatibility of agentbox-runtime with the agent-sandbox
// python-runtime (agent-sandbox.md section 4): every endpoint's path, JSON keys and status
// codes, including the quirks (execution failures are 200 with exit_code 1, /list/ 404 text,
// double decoding of paths, FastAPI's 404/405/422 shapes), plus the /agentbox/v1 extensions.
//
// Runs the real binary (RUNTIME_BIN) on 127.0.0.1 with a free port and a temporary base dir.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime } from './lib/runtime.mjs';

let rt, base, url;

before(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'abrt-'));
  rt = await startRuntime({ baseDir: base, timeout: '1.5' });
  url = rt.url;
});
after(async () => {
  await rt.stop();
  fs.rmSync(base, { recursive: true, force: true });
});

async function req(method, p, body, headers = {}) {
  const r = await fetch(url + p, { method, body, headers });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}
const post = (p, obj) => req('POST', p, JSON.stringify(obj), { 'content-type': 'application/json' });
function keys(o) { return Object.keys(o).sort(); }

test('GET / health', async () => {
  const r = await req('GET', '/');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok', message: 'Sandbox Runtime is active.' });
});

test('POST /execute success: keys stdout, stderr, exit_code', async () => {
  const r = await post('/execute', { command: 'sh -c "echo out; echo err >&2; exit 3"' });
  assert.equal(r.status, 200);
  assert.deepEqual(keys(r.json), ['exit_code', 'stderr', 'stdout']);
  assert.deepEqual(r.json, { stdout: 'out\n', stderr: 'err\n', exit_code: 3 });
  assert.match(r.headers.get('content-type'), /application\/json/);
});

test('POST /execute runs without a shell, cwd = base dir', async () => {
  let r = await post('/execute', { command: 'echo $HOME | cat' });
  assert.deepEqual(r.json, { stdout: '$HOME | cat\n', stderr: '', exit_code: 0 });
  r = await post('/execute', { command: 'pwd' });
  assert.equal(r.json.stdout, fs.realpathSync(base) + '\n');
  r = await post('/execute', { command: `printf '%s|' 'a b' "c\\"d" e\\ f ''` });
  assert.equal(r.json.stdout, 'a b|c"d|e f||');
});

test('POST /execute failures are 200 with exit_code 1 and a Failed to execute text', async () => {
  let r = await post('/execute', { command: 'no-such-command-xyz' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { stdout: '', stderr: "Failed to execute command: [Errno 2] No such file or directory: 'no-such-command-xyz'", exit_code: 1 });
  r = await post('/execute', { command: '' });
  assert.deepEqual(r.json, { stdout: '', stderr: 'Failed to execute command: list index out of range', exit_code: 1 });
  r = await post('/execute', { command: 'echo "unterminated' });
  assert.deepEqual(r.json, { stdout: '', stderr: 'Failed to execute command: No closing quotation', exit_code: 1 });
  r = await post('/execute', { command: 'echo x\\' });
  assert.equal(r.json.stderr, 'Failed to execute command: No escaped character');
});

test('POST /execute timeout kills the group and reports like subprocess.TimeoutExpired', async () => {
  const r = await post('/execute', { command: 'sh -c "sleep 30 & sleep 30"' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { stdout: '', stderr: "Failed to execute command: Command '['sh', '-c', 'sleep 30 & sleep 30']' timed out after 1.5 seconds", exit_code: 1 });
});

test('POST /execute signal exit is a negative returncode; CRLF becomes LF (text mode)', async () => {
  let r = await post('/execute', { command: 'sh -c "kill -9 $$"' });
  assert.equal(r.json.exit_code, -9);
  r = await post('/execute', { command: `printf 'a\\r\\nb\\rc'` });
  assert.equal(r.json.stdout, 'a\nb\nc');
});

test('POST /execute validation errors are FastAPI 422 {"detail":[...]}', async () => {
  let r = await post('/execute', {});
  assert.equal(r.status, 422);
  assert.deepEqual(r.json.detail[0].loc, ['body', 'command']);
  assert.equal(r.json.detail[0].type, 'missing');
  r = await post('/execute', { command: 5 });
  assert.equal(r.status, 422);
  assert.equal(r.json.detail[0].type, 'string_type');
  r = await req('POST', '/execute', '{not json', { 'content-type': 'application/json' });
  assert.equal(r.status, 422);
  assert.equal(r.json.detail[0].type, 'json_invalid');
  r = await req('POST', '/execute');
  assert.equal(r.status, 422);
});

function multipart(filename, content, field = 'file') {
  const fd = new FormData();
  fd.append(field, new Blob([content]), filename);
  return fd;
}

test('POST /upload writes under the base dir (creating parents), overwrites, message text', async () => {
  let r = await req('POST', '/upload', multipart('dir/sub/a.txt', 'hello'));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { message: "File 'dir/sub/a.txt' uploaded successfully." });
  assert.equal(fs.readFileSync(path.join(base, 'dir/sub/a.txt'), 'utf8'), 'hello');
  r = await req('POST', '/upload', multipart('/dir/sub/a.txt', 'bye'));
  assert.equal(r.status, 200);
  assert.equal(fs.readFileSync(path.join(base, 'dir/sub/a.txt'), 'utf8'), 'bye');
  const bin = Buffer.from([0, 1, 2, 255, 10, 13]);
  r = await req('POST', '/upload', multipart('bin.dat', bin));
  assert.equal(r.status, 200);
  assert.deepEqual(fs.readFileSync(path.join(base, 'bin.dat')), bin);
});

test('POST /upload confinement (403), missing part (422)', async () => {
  let r = await req('POST', '/upload', multipart('../escape.txt', 'x'));
  assert.equal(r.status, 403);
  assert.deepEqual(r.json, { message: 'Access denied' });
  fs.symlinkSync('/tmp', path.join(base, 'link-out'));
  r = await req('POST', '/upload', multipart('link-out/x.txt', 'x'));
  assert.equal(r.status, 403);
  r = await req('POST', '/upload', multipart('a.txt', 'x', 'other'));
  assert.equal(r.status, 422);
  assert.deepEqual(r.json.detail[0].loc, ['body', 'file']);
  r = await post('/upload', { file: 'x' });
  assert.equal(r.status, 422);
});

test('GET /download/{path}: bytes, octet-stream, attachment; %2F and / both work', async () => {
  fs.mkdirSync(path.join(base, 'dl'), { recursive: true });
  fs.writeFileSync(path.join(base, 'dl/f.txt'), 'content\n');
  for (const p of ['/download/dl/f.txt', '/download/dl%2Ff.txt']) {
    const r = await fetch(url + p);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.match(r.headers.get('content-disposition'), /^attachment; filename="dl\/f.txt"$/);
    assert.equal(await r.text(), 'content\n');
  }
  let r = await req('GET', '/download/dl/missing.txt');
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { message: 'File not found' });
  r = await req('GET', '/download/dl');
  assert.equal(r.status, 404, 'directories are not files');
  r = await req('GET', '/download/..%2F..%2Fetc%2Fpasswd');
  assert.equal(r.status, 403);
  assert.deepEqual(r.json, { message: 'Access denied' });
});

test('GET /list/{path}: name, size, type, mod_time; 404 for non-directories; 403 outside', async () => {
  fs.mkdirSync(path.join(base, 'ls/d'), { recursive: true });
  fs.writeFileSync(path.join(base, 'ls/f'), '12345');
  let r = await req('GET', '/list/ls');
  assert.equal(r.status, 200);
  const byName = Object.fromEntries(r.json.map((e) => [e.name, e]));
  assert.deepEqual(Object.keys(byName).sort(), ['d', 'f']);
  for (const e of r.json) assert.deepEqual(keys(e), ['mod_time', 'name', 'size', 'type']);
  assert.equal(byName.f.type, 'file');
  assert.equal(byName.f.size, 5);
  assert.equal(byName.d.type, 'directory');
  assert.equal(typeof byName.f.mod_time, 'number');
  r = await req('GET', '/list/ls/f');
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { message: 'Path is not a directory' });
  r = await req('GET', '/list/nope');
  assert.equal(r.status, 404);
  r = await req('GET', '/list/..%2F');
  assert.equal(r.status, 403);
  r = await req('GET', '/list/');
  assert.equal(r.status, 200, 'empty path lists the base dir');
  fs.mkdirSync(path.join(base, 'dangling'));
  fs.symlinkSync('/nonexistent-target', path.join(base, 'dangling/l'));
  r = await req('GET', '/list/dangling');
  assert.equal(r.status, 500);
  assert.match(r.json.message, /^List files failed: \[Errno 2\]/);
});

test('GET /exists/{path}: {"path","exists"}; 403 outside', async () => {
  fs.writeFileSync(path.join(base, 'e.txt'), '');
  let r = await req('GET', '/exists/e.txt');
  assert.deepEqual(r.json, { path: 'e.txt', exists: true });
  r = await req('GET', '/exists/sub%2Fnope');
  assert.deepEqual(r.json, { path: 'sub/nope', exists: false });
  r = await req('GET', '/exists/../x');
  assert.ok(r.status === 403 || r.status === 404); // a client-side normalised URL may not reach us
  r = await req('GET', '/exists/..%2Fx');
  assert.equal(r.status, 403);
});

test('unknown paths 404 and wrong methods 405 with FastAPI detail', async () => {
  let r = await req('GET', '/nope');
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { detail: 'Not Found' });
  r = await req('GET', '/execute');
  assert.equal(r.status, 405);
  assert.deepEqual(r.json, { detail: 'Method Not Allowed' });
  r = await req('DELETE', '/download/x');
  assert.equal(r.status, 405);
});

test('extension: /agentbox/v1/info and stat', async () => {
  let r = await req('GET', '/agentbox/v1/info');
  assert.equal(r.json.runtime, 'agentbox-runtime');
  assert.deepEqual(r.json.extensions, ['exec', 'stat', 'list']);
  fs.writeFileSync(path.join(base, 's.txt'), 'abc');
  fs.symlinkSync('s.txt', path.join(base, 's.lnk'));
  r = await req('GET', '/agentbox/v1/stat/s.lnk');
  assert.equal(r.status, 200);
  assert.equal(r.json.type, 'symlink');
  assert.equal(r.json.target_type, 'file');
  r = await req('GET', '/agentbox/v1/stat/' + encodeURIComponent(path.join(base, 's.txt')));
  assert.equal(r.json.size, 3);
  assert.equal(r.json.mode, 0o666 & ~process.umask());
  r = await req('GET', '/agentbox/v1/stat/nope');
  assert.equal(r.status, 404);
  r = await req('GET', '/agentbox/v1/list/');
  assert.ok(r.json.entries.some((e) => e.name === 's.lnk' && e.type === 'symlink'));
});

async function streamExec(body) {
  const r = await fetch(url + '/agentbox/v1/exec', { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  const events = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  const out = Buffer.concat(events.filter((e) => e.data).map((e) => Buffer.from(e.data, 'base64')));
  return { events, out: out.toString(), exit: events.at(-1) };
}

test('extension: streaming exec with shell, argv, env, cwd, stdin, cap, timeout', async () => {
  let x = await streamExec({ shell: 'echo out; echo err >&2; cat; exit 3', stdin: Buffer.from('in\n').toString('base64') });
  assert.equal(x.out, 'out\nerr\nin\n');
  assert.equal(x.exit.type, 'exit');
  assert.equal(x.exit.exit_code, 3);
  x = await streamExec({ argv: ['sh', '-c', 'echo $FOO; pwd'], env: ['FOO=bar'], cwd: '/' });
  assert.equal(x.out, 'bar\n/\n');
  x = await streamExec({ shell: 'head -c 100000 /dev/zero | tr "\\0" a', output_cap: 10 });
  assert.equal(x.out, 'aaaaaaaaaa');
  assert.equal(x.exit.truncated, true);
  x = await streamExec({ shell: 'sleep 20', timeout_ms: 300 });
  assert.equal(x.exit.exit_code, 124);
  assert.equal(x.exit.timed_out, true);
  x = await streamExec({ argv: ['no-such-binary-xyz'] });
  assert.equal(x.exit.exit_code, 127);
  const r = await post('/agentbox/v1/exec', { argv: [] });
  assert.equal(r.status, 400);
});
