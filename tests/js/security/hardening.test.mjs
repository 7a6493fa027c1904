// The server's environment (tokens!) and its descriptors never reach a sandbox, proven
// through the real server and its tools: the server is started with secrets in its
// environment and with an inherited, non-close-on-exec descriptor, and a command inside a
// sandbox looks for both everywhere it can.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { call, connect, startRawServer, tmpDir } from './lib.mjs';

test('hardening: no environment variable and no descriptor of the server reaches a sandbox', async () => {
  const dir = tmpDir();
  const leak = path.join(dir, 'inherited.txt');
  fs.writeFileSync(leak, 'inherited-descriptor-content\n');
  const fd = fs.openSync(leak, 'r'); // node opens without O_CLOEXEC when passed to a child
  const token = 'env-token-3c9f1a7e5d2b8c4f60';
  const server = await startRawServer({
    env: {
      PATH: process.env.PATH,
      AGENTBOX_TOKEN: token,
      SECRET_API_KEY: 'sk-live-do-not-leak-81f2',
      AGENTBOX_POLICY_ASK_TIMEOUT: '30s',
    },
    stdio: ['ignore', 'ignore', 'pipe', fd, 'pipe'],
  });
  try {
    const c = await connect(server.url, token);
    const probe = [
      'echo ENV; env',
      'echo SELF-ENVIRON; tr "\\0" "\\n" < /proc/self/environ',
      'echo FDS; ls -l /proc/self/fd/',
      'echo ALL-ENVIRONS; for p in /proc/[0-9]*; do tr "\\0" "\\n" < $p/environ 2>/dev/null; done',
      'echo ALL-FDS; for p in /proc/[0-9]*; do ls -l $p/fd/ 2>/dev/null; done',
      'echo FIND; grep -rl inherited-descriptor-content /proc/[0-9]*/fd/ 2>/dev/null; true',
    ].join('; ');
    const r = await call(c, 'execute', { command: probe });
    assert.equal(r.isError, false, r.text);
    for (const secret of [token, 'sk-live-do-not-leak', 'SECRET_API_KEY', 'AGENTBOX_', 'inherited-descriptor-content', leak]) {
      assert.ok(!r.text.includes(secret), `"${secret}" reached the sandbox:\n${r.text}`);
    }
    // The command's own descriptors: 0, 1, 2 and ls's directory, nothing else.
    const fds = r.text.split('FDS\n')[1].split('ALL-ENVIRONS')[0];
    const numbers = [...fds.matchAll(/ (\d+) -> /g)].map((m) => Number(m[1]));
    assert.deepEqual(numbers.filter((n) => n > 3), [], fds);
    // The same through execute_python (another exec path: argv, stdin).
    const p = await call(c, 'execute_python', { code: 'import os\nprint(sorted(os.environ))\nprint(sorted(os.listdir("/proc/self/fd")))' });
    assert.ok(!p.text.includes('SECRET') && !p.text.includes('AGENTBOX'), p.text);
    await c.close();
  } finally {
    fs.closeSync(fd);
    const e = await server.stop();
    assert.equal(e.code, 0, server.stderr().slice(-2000));
  }
});
