// A realistic agent session over Streamable HTTP with the official SDK client
// (StreamableHTTPClientTransport), two conversation threads at once, on the local provider
// and on the agent-sandbox provider (emulated cluster):
//   write a project, run it, grep it, edit it, rerun it, upload data, run on the data,
//   download the result, execute_python with seeded files;
// thread A names its thread with the Agentbox-Thread-Id header (as a proxy or a LangGraph
// deployment does), thread B with _meta["agentbox/thread_id"] (as LangChain's adapters do).
// Then: the two sandboxes are separate; each persists across calls (files, a background
// process) and across MCP sessions (a new session with the same thread id finds everything);
// a session without a thread id gets a sandbox of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, startHttpServer, textOf } from './lib/server.mjs';

const OK = '\n[Command succeeded with exit code 0]';
const ok = (r, what) => { if (r.isError) assert.fail(`${what}: ${textOf(r)}`); return r; };

// How a thread names itself: through the session's header, or per call in _meta.
function threadOf(kind, id) {
  return kind === 'header'
    ? { headers: { 'Agentbox-Thread-Id': id }, meta: {} }
    : { headers: {}, meta: { thread: id } };
}

// One agent's session in its thread; returns what it learned (sandbox id, marker).
async function agentSession(server, kind, id, marker) {
  const t = threadOf(kind, id);
  const s = await server.connect({ headers: t.headers });
  const call = (name, args) => s.call(name, args, t.meta);
  try {
    // 1. write a small project
    ok(await call('write', {
      path: '/workspace/proj/greet.py',
      content: `import sys\nfrom util import banner\n\n# TODO: say more\nprint(banner("Hello, " + sys.argv[1] + " from ${marker}"))\n`,
    }), 'write greet.py');
    ok(await call('write', { path: 'proj/util.py', content: 'def banner(s):\n    return "*** " + s + " ***"\n' }), 'write util.py');
    ok(await call('write', {
      path: 'proj/stats.py',
      content: 'import csv, json, os\nrows = list(csv.DictReader(open("data/numbers.csv")))\n'
        + 'total = sum(int(r["n"]) for r in rows)\nos.makedirs("out", exist_ok=True)\n'
        + `json.dump({"rows": len(rows), "total": total, "marker": "${marker}"}, open("out/result.json", "w"))\nprint("total", total)\n`,
    }), 'write stats.py');
    // 2. run it
    let r = ok(await call('execute', { command: 'cd proj && python3 greet.py world' }), 'run');
    assert.equal(textOf(r), `*** Hello, world from ${marker} ***\n${OK}`);
    // 3. grep
    r = ok(await call('grep', { pattern: 'TODO', path: '/workspace/proj', output_mode: 'content' }), 'grep');
    assert.equal(textOf(r), '/workspace/proj/greet.py:\n  4: # TODO: say more');
    // 4. edit, 5. rerun
    r = ok(await call('edit', { path: 'proj/greet.py', old_string: '"Hello, "', new_string: '"Hi there, "' }), 'edit');
    assert.equal(textOf(r), "Successfully replaced 1 instance(s) of the string in '/workspace/proj/greet.py'");
    r = ok(await call('execute', { command: 'python3 greet.py again', workdir: 'proj' }), 'rerun');
    assert.equal(textOf(r), `*** Hi there, again from ${marker} ***\n${OK}`);
    // 6. upload data, run on it
    const csv = 'n,label\n' + Array.from({ length: 100 }, (_, i) => `${i + 1},row ${i + 1}`).join('\n') + '\n';
    r = ok(await call('upload', { files: [{ path: 'proj/data/numbers.csv', content_base64: Buffer.from(csv).toString('base64') }] }), 'upload');
    assert.equal(textOf(r), `Uploaded /workspace/proj/data/numbers.csv (${csv.length} bytes)`);
    r = ok(await call('execute', { command: 'python3 stats.py', workdir: '/workspace/proj' }), 'stats');
    assert.equal(textOf(r), `total 5050\n${OK}`);
    // 7. download the result
    r = ok(await call('download', { paths: ['/workspace/proj/out/result.json'] }), 'download');
    const res = r.content.find((c) => c.type === 'resource').resource;
    const body = res.text ?? Buffer.from(res.blob, 'base64').toString();
    assert.deepEqual(JSON.parse(body), { rows: 100, total: 5050, marker });
    // 8. execute_python with seeded files, reading the project's own output too
    r = ok(await call('execute_python', {
      code: 'import json\ncfg = json.load(open("seed/config.json"))\nres = json.load(open("/workspace/proj/out/result.json"))\n'
        + 'print(cfg["greeting"], res["total"] * cfg["factor"], res["marker"])',
      files: { 'seed/config.json': JSON.stringify({ greeting: 'double', factor: 2 }) },
    }), 'execute_python');
    assert.equal(textOf(r), `double 10100 ${marker}\n${OK}`);
    // 9. a background process that must survive this session
    ok(await call('execute', { command: 'nohup sleep 600 >/dev/null 2>&1 & echo $! > bg.pid' }), 'background');
    const infoR = ok(await call('sandbox_info', {}), 'sandbox_info');
    assert.equal(infoR.structuredContent.thread_id, id);
    return { sandbox: infoR.structuredContent.sandbox_id, session: s.sessionId };
  } finally {
    await s.close();
  }
}

function suite(provider, clusterArgs) {
  describe(`agent sessions over Streamable HTTP on ${provider}`, () => {
    let cluster = null;
    let server = null;
    before(async () => {
      if (provider === 'agent-sandbox') cluster = await startCluster({ args: clusterArgs });
      server = await startHttpServer({ provider, cluster });
    });
    after(async () => {
      await server?.stop();
      await cluster?.stop();
    });

    test('two threads at once: separate sandboxes, each persisting across calls and MCP sessions', async () => {
      const A = `thread-a-${process.pid}`;
      const B = `thread-b-${process.pid}`;
      const [a, b] = await Promise.all([
        agentSession(server, 'header', A, 'alpha'),
        agentSession(server, 'meta', B, 'beta'),
      ]);
      assert.notEqual(a.sandbox, b.sandbox, 'the two threads share a sandbox');
      assert.notEqual(a.session, b.session);

      // New MCP sessions, same thread ids: everything is still there (files, the background
      // process), in the same sandbox; and each thread still sees only its own files.
      for (const [kind, id, marker, first] of [['header', A, 'alpha', a], ['meta', B, 'beta', b]]) {
        const t = threadOf(kind, id);
        const s = await server.connect({ headers: t.headers });
        try {
          assert.notEqual(s.sessionId, first.session, 'a new MCP session');
          const call = (name, args) => s.call(name, args, t.meta);
          const info = ok(await call('sandbox_info', {}), 'sandbox_info').structuredContent;
          assert.equal(info.sandbox_id, first.sandbox, `${id}: another sandbox in a new session`);
          const r = ok(await call('read', { path: '/workspace/proj/out/result.json' }), 'read');
          assert.equal(JSON.parse(textOf(r).replace(/^1 {2}/, '')).marker, marker);
          const bg = ok(await call('execute', { command: 'kill -0 "$(cat bg.pid)" && echo alive' }), 'bg');
          assert.equal(textOf(bg), `alive\n${OK}`);
          // grep over the whole workspace finds this thread's marker only.
          const g = ok(await call('grep', { pattern: marker === 'alpha' ? 'beta' : 'alpha', output_mode: 'files_with_matches' }), 'grep');
          assert.equal(textOf(g), 'No matches found', `${id} sees the other thread's files`);
          ok(await call('execute', { command: 'kill "$(cat bg.pid)"' }), 'kill bg');
        } finally {
          await s.close();
        }
      }

      // The header and _meta name the same key space: _meta with A's id reaches A's sandbox.
      const s = await server.connect();
      try {
        const viaMeta = ok(await s.call('sandbox_info', {}, { thread: A }), 'info').structuredContent;
        assert.equal(viaMeta.sandbox_id, a.sandbox);
        // A session without a thread id has a sandbox of its own, without the project.
        const own = ok(await s.call('sandbox_info', {}), 'info').structuredContent;
        assert.ok(own.sandbox_id !== a.sandbox && own.sandbox_id !== b.sandbox);
        const r = await s.call('read', { path: '/workspace/proj/greet.py' });
        assert.equal(textOf(r), "Error: File '/workspace/proj/greet.py': file_not_found");
        // Clean up the threads' sandboxes through the lifecycle tools.
        for (const id of [A, B]) ok(await s.call('sandbox_delete', {}, { thread: id }), 'delete');
        ok(await s.call('sandbox_delete', {}), 'delete own');
      } finally {
        await s.close();
      }
    });
  });
}

suite('local');
suite('agent-sandbox', ['--isolated-pods']);
