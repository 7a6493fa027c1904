// The policy (src/core/policy) through the real server and the official SDK: each rule with
// its exact refusal text, links that would bypass a path rule, the `ask` flow through MCP
// elicitation (a client that accepts, one that declines, one that accepts without approving,
// one that cannot elicit), and the audit log lines all of this produced.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { TOKENS, call, connect, readAudit, sets, startHttpServer, tmpDir, tokenArgs } from './lib.mjs';

const dir = tmpDir();
const auditFile = path.join(dir, 'audit.log');
let server;

before(async () => {
  server = await startHttpServer({
    args: [...tokenArgs(), ...sets({
      'policy.virtual_root': '/workspace',
      'policy.allow_write_prefixes': '/workspace',
      'policy.deny_prefixes': '/workspace/.git',
      'policy.deny_commands': 'rm -rf /,*mkfs*',
      'policy.ask_commands': 'git push',
      'policy.ask_timeout': '30s',
      'audit.path': auditFile,
    })],
  });
});

after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit:\n${server.stderr().slice(-3000)}`);
});

const SECRET = 'do-not-log-this-content-5b1f';

test('policy: path rules, each with its refusal text', async () => {
  const c = await connect(server.url, TOKENS.alice);
  try {
    const ok = await call(c, 'write', { path: 'src/app.py', content: `x = "${SECRET}"\n` });
    assert.equal(ok.isError, false, ok.text);

    let r = await call(c, 'write', { path: '.git/config', content: 'x' });
    assert.equal(r.text, 'Error: permission denied for write on /workspace/.git/config: the policy '
      + 'forbids changing anything under /workspace/.git. Writes are allowed under: /workspace '
      + '(except under: /workspace/.git).');
    r = await call(c, 'edit', { path: '/workspace/.git/HEAD', old_string: 'a', new_string: 'b' });
    assert.match(r.text, /^Error: permission denied for write on \/workspace\/\.git\/HEAD: the policy forbids/);
    r = await call(c, 'upload', { files: [{ path: '.git/hooks/pre-commit', content: 'x' }, { path: 'ok.txt', content: 'x' }] });
    assert.deepEqual(r.structured.files.map((f) => f.error), ['permission_denied', null]);

    const outside = 'Error: Path \'/etc/passwd\' is outside the allowed root /workspace. Only paths '
      + 'under /workspace are allowed; relative paths resolve inside the workspace.';
    r = await call(c, 'read', { path: '/etc/passwd' });
    assert.equal(r.text, outside);
    r = await call(c, 'ls', { path: '/tmp' });
    assert.match(r.text, /^Error: Path '\/tmp' is outside the allowed root \/workspace/);
    r = await call(c, 'grep', { pattern: 'root', path: '/etc' });
    assert.match(r.text, /outside the allowed root/);
    r = await call(c, 'download', { paths: ['/etc/hostname'] });
    assert.equal(r.structured.files[0].error, 'permission_denied');
    r = await call(c, 'execute', { command: 'pwd', workdir: '/etc' });
    assert.match(r.text, /^Error: Path '\/etc' is outside the allowed root/);
    r = await call(c, 'read', { path: '../etc/passwd' });
    assert.equal(r.isError, true);
    assert.match(r.text, /traversal/i);

    // A link inside the workspace may point anywhere: with path rules, links are refused.
    const ln = await call(c, 'execute', { command: 'mkdir -p .git && ln -s .git/config innocent && ln -s /etc/passwd pw' });
    assert.equal(ln.isError, false, ln.text);
    r = await call(c, 'write', { path: 'innocent', content: 'pwned' });
    assert.equal(r.text, 'Error: write on /workspace/innocent refused: /workspace/innocent is a '
      + 'symbolic link, and this server\'s path policy applies to real paths only. Use the path '
      + 'the link points to (execute `readlink -f /workspace/innocent` shows it).');
    r = await call(c, 'read', { path: 'pw' });
    assert.match(r.text, /^Error: read on \/workspace\/pw refused: \/workspace\/pw is a symbolic link/);
    assert.ok(!r.text.includes('root:x:0'), r.text);
  } finally {
    await c.close();
  }
});

test('policy: denied commands, with the text that says what is allowed', async () => {
  const c = await connect(server.url, TOKENS.alice);
  try {
    let r = await call(c, 'execute', { command: 'cd / && rm -rf / --no-preserve-root' });
    assert.equal(r.text, 'Error: the command was refused by policy: it matches the denied pattern '
      + '\'rm -rf /\'. Commands containing any of these are not allowed: \'rm -rf /\', \'*mkfs*\'. '
      + 'Everything else is allowed; achieve the goal another way.');
    r = await call(c, 'execute_python', { code: 'import os\nos.system("mkfs.ext4 /dev/sda")\n' });
    assert.match(r.text, /^Error: the command was refused by policy: it matches the denied pattern '\*mkfs\*'/);
    r = await call(c, 'execute', { command: 'echo allowed' });
    assert.equal(r.isError, false, r.text);
    assert.equal(r.text, 'allowed\n\n[Command succeeded with exit code 0]');
  } finally {
    await c.close();
  }
});

// A client whose elicitation handler answers with `answer` (and records the request).
async function asker(answer) {
  const seen = [];
  const c = await connect(server.url, TOKENS.bob, { capabilities: { elicitation: {} } });
  c.client.setRequestHandler(ElicitRequestSchema, async (req) => {
    seen.push(req.params);
    return answer;
  });
  return { c, seen };
}

test('ask: the user approves through elicitation and the command runs', async () => {
  const { c, seen } = await asker({ action: 'accept', content: { approve: true } });
  try {
    const r = await call(c, 'execute', { command: 'echo pushing; git push origin main 2>/dev/null; echo after-push' });
    assert.equal(seen.length, 1);
    assert.match(seen[0].message, /git push origin main/);
    assert.match(seen[0].message, /'git push'/);
    assert.equal(seen[0].requestedSchema.properties.approve.type, 'boolean');
    assert.match(r.text, /pushing\n/);
    assert.match(r.text, /after-push\n\n\[Command succeeded with exit code 0\]$/);
  } finally {
    await c.close();
  }
});

test('ask: the user declines, or accepts without approving: refused, with the reason', async () => {
  for (const [answer, why] of [
    [{ action: 'decline' }, 'the user declined'],
    [{ action: 'cancel' }, 'the user dismissed the request'],
    [{ action: 'accept', content: { approve: false } }, 'the user did not approve it'],
  ]) {
    const { c, seen } = await asker(answer);
    try {
      const r = await call(c, 'execute', { command: 'git push --force' });
      assert.equal(seen.length, 1);
      assert.equal(r.isError, true);
      assert.equal(r.text, `Error: the command was not run: commands matching 'git push' need the `
        + `user's approval, and ${why}. Do not retry it; continue without it or ask the user to `
        + 'run it themselves.');
    } finally {
      await c.close();
    }
  }
});

test('ask: a client that cannot elicit gets a clear refusal (never a silent run)', async () => {
  const c = await connect(server.url, TOKENS.bob); // no elicitation capability
  try {
    const r = await call(c, 'execute', { command: 'git push' });
    assert.equal(r.text, 'Error: the command was not run: commands matching \'git push\' need the '
      + 'user\'s approval, and this client cannot ask the user (it does not support MCP '
      + 'elicitation). Do not retry it; continue without it or ask the user to run it themselves.');
    // execute_python text is checked against the same rules.
    const p = await call(c, 'execute_python', { code: 'import os\nos.system("git push")\n' });
    assert.match(p.text, /need the user's approval, and this client cannot ask the user/);
  } finally {
    await c.close();
  }
});

test('audit: one JSON line per tool call with principal, thread, sandbox, digest, result, decision', async () => {
  const raw = fs.readFileSync(auditFile, 'utf8');
  assert.ok(raw.endsWith('\n'));
  assert.ok(!raw.includes(SECRET), 'arguments are digested, never logged');
  for (const t of Object.values(TOKENS)) assert.ok(!raw.includes(t));
  const lines = readAudit(auditFile);
  const keys = ['time', 'principal', 'session', 'thread', 'sandbox', 'tool', 'args_digest', 'result',
    'bytes', 'duration_ms', 'decision'];
  for (const l of lines) {
    assert.deepEqual(Object.keys(l), keys);
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.match(l.args_digest, /^sha256:[0-9a-f]{64}$/);
    assert.match(l.session, /^[0-9a-f]{32}$/);
    assert.equal(typeof l.duration_ms, 'number');
  }
  const find = (pred, what) => {
    const l = lines.find(pred);
    assert.ok(l, `no audit line for ${what}:\n${lines.map((x) => JSON.stringify(x)).join('\n')}`);
    return l;
  };
  const okWrite = find((l) => l.tool === 'write' && l.result === 'ok' && l.decision === 'allow', 'an allowed write');
  assert.equal(okWrite.principal, 'alice');
  assert.match(okWrite.sandbox, /^ab-[0-9a-f]{20}$/);
  assert.ok(okWrite.thread.length > 0);
  assert.ok(okWrite.bytes > 0);
  find((l) => l.tool === 'write' && l.result === 'denied' && l.decision === 'deny', 'a write refused by a path rule');
  find((l) => l.tool === 'read' && l.result === 'denied' && l.decision === 'deny', 'a read outside the root');
  find((l) => l.tool === 'execute' && l.result === 'denied' && l.decision === 'deny', 'a denied command');
  const accepted = find((l) => l.decision === 'ask:accept', 'an approved ask');
  assert.equal(accepted.result, 'ok');
  assert.equal(accepted.principal, 'bob');
  find((l) => l.decision === 'ask:decline' && l.result === 'denied', 'a declined ask');
  find((l) => l.decision === 'ask:cancel' && l.result === 'denied', 'a dismissed ask');
  find((l) => l.decision === 'ask:unavailable' && l.result === 'denied', 'an ask without elicitation');
  // The same arguments give the same digest (calls can be correlated without the content).
  const digests = lines.filter((l) => l.tool === 'execute' && l.decision === 'ask:unavailable').map((l) => l.args_digest);
  assert.equal(new Set(digests).size, digests.length, 'different arguments, different digests');
});
