// Streaming and cancellation of execute / execute_python through the official SDK client,
// on the local provider (stdio) and on the agent-sandbox provider (emulated cluster):
//   - a command's output arrives as notifications/progress (message = the chunk) while the
//     command still runs: the command waits for a file that the test creates only after it
//     has seen the first chunk, so the order is causal, not timed;
//   - the chunks put together are the output the result reports;
//   - cancelling (the SDK's AbortSignal sends notifications/cancelled) kills the command's
//     whole process group: the shell and its child are gone (kill -0 fails), and the server
//     keeps serving the same sandbox; on the upstream python-runtime API as well, which has
//     no streaming and no way to stop a command (the provider kills its process groups).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, startServer, textOf } from './lib/server.mjs';

const DEADLINE_MS = 20000;

// Poll (bounded) until pred() holds.
async function eventually(what, pred) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) assert.fail(`${what}: not reached within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The progress notifications of the tools/call whose arguments contain marker, and its
// response, as they were on the wire (lib/server.mjs records it).
function wireOf(srv, marker) {
  const req = srv.wire.find((w) => w.dir === 'out' && w.msg.method === 'tools/call' && JSON.stringify(w.msg.params.arguments).includes(marker));
  assert.ok(req, `no request with ${marker}`);
  const token = req.msg.params._meta?.progressToken;
  const notes = [];
  let response = null;
  for (const w of srv.wire) {
    if (w.dir !== 'in') continue;
    if (w.msg.id === req.msg.id && !w.msg.method) { response = w.msg; break; }
    if (w.msg.method === 'notifications/progress' && w.msg.params.progressToken === token) notes.push(w.msg);
  }
  return { notes, response };
}

// streams: the provider streams output (local; agent-sandbox with agentbox-runtime). Over the
// upstream python-runtime API output arrives when the command ends, so only cancellation
// is checked there.
function suite(provider, clusterArgs, { streams = true, sets = {}, title = provider } = {}) {
  describe(`${streams ? 'streaming and cancellation' : 'cancellation'} on ${title}`, () => {
    let cluster = null;
    let srv = null;
    const meta = { thread: 'streaming' };
    before(async () => {
      if (provider === 'agent-sandbox') cluster = await startCluster({ args: clusterArgs });
      srv = await startServer({ provider, cluster, sets });
    });
    after(async () => {
      await srv?.stop();
      await cluster?.stop();
    });

    test('output arrives as progress notifications before the command ends', { skip: !streams && 'no streaming on this runtime API' }, async () => {
      await srv.call('execute', { command: 'rm -f go' }, meta);
      const chunks = [];
      let sawFirst;
      const first = new Promise((r) => { sawFirst = r; });
      const pending = srv.call('execute', {
        command: 'echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; printf "caf\\303\\251 end"',
      }, meta, {
        onprogress: (p) => {
          chunks.push(p);
          if (chunks.map((c) => c.message).join('').includes('first\n')) sawFirst();
        },
      });
      await first; // the command is still waiting for "go" here
      assert.ok(chunks.length >= 1);
      const w = await srv.call('write', { path: 'go', content: '' }, meta);
      assert.equal(w.isError, undefined, textOf(w));
      const r = await pending;
      assert.equal(textOf(r), 'first\nsecond\ncafé end\n[Command succeeded with exit code 0]');
      // On the wire: every chunk before the response, together the output, progress = bytes.
      const { notes, response } = wireOf(srv, 'echo first;');
      assert.ok(response, 'the response is on the wire');
      assert.equal(notes.map((n) => n.params.message).join(''), 'first\nsecond\ncafé end', 'the chunks are the output');
      for (let i = 1; i < notes.length; i++) assert.ok(notes[i].params.progress > notes[i - 1].params.progress, 'progress increases');
      assert.equal(notes.at(-1).params.progress, Buffer.byteLength('first\nsecond\ncafé end'), 'progress counts bytes');
      // What the SDK delivered to onprogress is a prefix of that (see lib/server.mjs).
      assert.ok('first\nsecond\ncafé end'.startsWith(chunks.map((c) => c.message).join('')));
    });

    test('execute_python streams too', { skip: !streams && 'no streaming on this runtime API' }, async () => {
      const chunks = [];
      let sawA;
      const a = new Promise((r) => { sawA = r; });
      const pending = srv.call('execute_python', {
        code: 'import os, time\nprint("a")\nwhile not os.path.exists("go2"):\n    time.sleep(0.05)\nprint("b")',
      }, meta, { onprogress: (p) => { chunks.push(p.message); if (chunks.join('').includes('a\n')) sawA(); } });
      await a;
      await srv.call('write', { path: 'go2', content: '' }, meta);
      const r = await pending;
      assert.equal(textOf(r), 'a\nb\n\n[Command succeeded with exit code 0]');
      assert.equal(wireOf(srv, 'exists(').notes.map((n) => n.params.message).join(''), 'a\nb\n');
      assert.ok('a\nb\n'.startsWith(chunks.join('')));
    });

    // Cancellation is triggered once the command has written its pid files (read through
    // other calls), not by its output, so it works where output is not streamed too.
    const pidsOf = async (files) => {
      let pids = null;
      await eventually('the command wrote its pids', async () => {
        const r = await srv.call('execute', { command: `cat ${files} 2>/dev/null` }, meta);
        pids = r.structuredContent.output.split('\n').filter(Boolean);
        return pids.length === files.split(' ').length && pids.every((x) => /^\d+$/.test(x));
      });
      return pids;
    };
    const gone = (pids) => eventually('the cancelled command is gone', async () => {
      const r = await srv.call('execute', { command: pids.map((x) => `kill -0 ${x} 2>/dev/null`).join(' || ') + '; echo alive=$?' }, meta);
      return textOf(r).startsWith('alive=1');
    });

    test('cancelling kills the command and its children; the server keeps serving', async () => {
      await srv.call('execute', { command: 'rm -f sh.pid child.pid' }, meta);
      const ac = new AbortController();
      const pending = srv.call('execute', {
        command: 'echo $$ > sh.pid.tmp; mv sh.pid.tmp sh.pid; sleep 1000 & echo $! > child.pid.tmp; mv child.pid.tmp child.pid; echo started; wait',
      }, meta, { signal: ac.signal, ...(streams ? { onprogress: () => {} } : {}) });
      const pids = await pidsOf('sh.pid child.pid');
      ac.abort('test cancels');
      await assert.rejects(pending, (e) => /abort|cancel/i.test(String(e?.name) + String(e?.message) + String(e)));
      await gone(pids);
      const r = await srv.call('execute', { command: 'echo still serving' }, meta);
      assert.equal(textOf(r), 'still serving\n\n[Command succeeded with exit code 0]');
    });

    test('cancelling execute_python stops the interpreter', async () => {
      await srv.call('execute', { command: 'rm -f py.pid' }, meta);
      const ac = new AbortController();
      const pending = srv.call('execute_python', {
        code: 'import os, time\nopen("py.pid.tmp", "w").write(str(os.getpid()))\nos.rename("py.pid.tmp", "py.pid")\ntime.sleep(1000)',
      }, meta, { signal: ac.signal });
      const pids = await pidsOf('py.pid');
      ac.abort();
      await assert.rejects(pending);
      await gone(pids);
    });

    test('a flood past the output cap streams at most the cap, then byte counts', { skip: !streams && 'no streaming on this runtime API' }, async () => {
      const r = await srv.call('execute', { command: 'head -c 3000000 /dev/zero | tr "\\0" x; echo; echo tail' }, meta,
        { onprogress: () => {} });
      assert.equal(r.structuredContent.truncated, true);
      assert.equal(r.structuredContent.output.length, 1024 * 1024);
      const { notes } = wireOf(srv, 'head -c 3000000');
      const text = notes.filter((n) => !n.params.message.startsWith('[output limit reached')).map((n) => n.params.message).join('');
      assert.equal(text, 'x'.repeat(1024 * 1024), 'the streamed text is the kept output and stops at the cap');
      // Past the cap only byte counts, at most one per MiB: a flood of output is not a flood
      // of notifications.
      const counts = notes.filter((n) => n.params.message.startsWith('[output limit reached'));
      assert.ok(counts.length <= 3, `${counts.length} byte-count notifications for 2 MiB past the cap`);
    });
  });
}

suite('local');
suite('agent-sandbox', ['--isolated-pods']);
suite('agent-sandbox', ['--isolated-pods'], { streams: false, sets: { 'k8s.runtime_api': 'python-runtime' }, title: 'agent-sandbox (python-runtime API)' });
