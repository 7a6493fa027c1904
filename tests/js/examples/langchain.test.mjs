// The LangChain JS example (examples/langchain-js/agent.mjs) against a real agentbox over
// Streamable HTTP: a deepagents agent, driven by a scripted chat model (a @langchain/core
// BaseChatModel that emits fixed tool calls, so no API key is needed), writes a Python file,
// runs it, edits it, runs it again and greps it on one LangGraph thread, and writes a note on
// a second thread; the test then checks the two sandboxes' workspaces on disk and through a
// second MCP client, and that a later turn of the first thread finds its files again.
//
// The example is imported as it is: copied next to tests/js/node_modules so its bare imports
// ('deepagents', ...) resolve to the pinned versions of tests/js/package.json.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { src, startHttp, workspaceOf } from './lib.mjs';

const jsDir = process.env.AGENTBOX_JS_DIR;
const copyDir = path.join(jsDir, 'node_modules', '.agentbox-examples');
fs.mkdirSync(copyDir, { recursive: true });
const copy = path.join(copyDir, `agent-${process.pid}.mjs`);
fs.copyFileSync(path.join(src, 'examples', 'langchain-js', 'agent.mjs'), copy);
process.on('exit', () => fs.rmSync(copy, { force: true }));
const { createAgentboxAgent, finalText } = await import(copy);

// Scripted turns: thread marker (in the user's first message) -> turns -> steps. A step is
// [tool, args] (one tool call) or a string (the final answer).
const SCRIPT = {
  'task-a': [
    [
      ['agentbox__write', { path: 'app.py', content: "print('hello from A')\n" }],
      ['agentbox__execute', { command: 'python3 app.py' }],
      ['agentbox__edit', { path: 'app.py', old_string: 'hello', new_string: 'goodbye' }],
      ['agentbox__execute', { command: 'python3 app.py' }],
      ['agentbox__grep', { pattern: 'goodbye', output_mode: 'content' }],
      'Wrote app.py, ran it, changed the greeting, ran it again.',
    ],
    [
      ['agentbox__read', { path: 'app.py' }],
      'app.py is still there.',
    ],
  ],
  'task-b': [
    [
      ['agentbox__write', { path: 'notes/b.txt', content: 'thread B was here\n' }],
      ['agentbox__ls', { path: '.' }],
      'Noted.',
    ],
  ],
};

class ScriptedChatModel extends BaseChatModel {
  constructor() {
    super({});
    this.offered = new Set(); // tool names bound by the agent
    this.calls = 0;
  }
  _llmType() { return 'scripted'; }
  bindTools(tools) {
    for (const t of tools) this.offered.add(t.name ?? t.function?.name);
    return this;
  }
  async _generate(messages) {
    this.calls++;
    const humans = messages.filter((m) => HumanMessage.isInstance(m));
    const marker = Object.keys(SCRIPT).find((k) => String(humans[0].content).includes(k));
    assert.ok(marker, `no script for ${humans[0].content}`);
    const lastHuman = messages.lastIndexOf(humans.at(-1));
    const step = messages.slice(lastHuman).filter((m) => AIMessage.isInstance(m)).length;
    const next = SCRIPT[marker][humans.length - 1][step];
    const message = typeof next === 'string'
      ? new AIMessage(next)
      : new AIMessage({ content: '', tool_calls: [{ id: `call-${marker}-${humans.length}-${step}`, name: next[0], args: next[1], type: 'tool_call' }] });
    return { generations: [{ text: typeof next === 'string' ? next : '', message }] };
  }
}

// The tool results of a run, in order, as text.
const toolResults = (result) => result.messages.filter((m) => ToolMessage.isInstance(m)).map((m) => ({
  name: m.name,
  status: m.status,
  structured: (m.artifact || []).find((a) => a.type === 'mcp_structured_content')?.data,
  text: typeof m.content === 'string' ? m.content : m.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
}));

const run = (agent, thread, text) => agent.invoke({ messages: [{ role: 'user', content: text }] },
  { configurable: { thread_id: thread }, recursionLimit: 50 });

test('a deepagents agent keeps each LangGraph thread in its own agentbox sandbox', { timeout: 240000 }, async () => {
  const token = 'langchain-example-token-0123456789';
  const srv = await startHttp({ env: { AGENTBOX_TOKEN: token } });
  const model = new ScriptedChatModel();
  const { agent, tools, close } = await createAgentboxAgent({ url: srv.url, token, model });
  try {
    // agentbox's tools, prefixed; deepagents' own filesystem tools are hidden from the model.
    const names = tools.map((t) => t.name).sort();
    assert.ok(names.includes('agentbox__execute') && names.includes('agentbox__edit'), names.join());

    const a = await run(agent, 'thread-a', 'task-a: write app.py, run it, edit it');
    assert.equal(finalText(a), 'Wrote app.py, ran it, changed the greeting, ran it again.');
    for (const n of ['agentbox__write', 'agentbox__execute', 'agentbox__grep', 'task']) {
      assert.ok(model.offered.has(n), `the model was not offered ${n}`);
    }
    for (const n of ['ls', 'read_file', 'write_file', 'edit_file', 'glob', 'grep', 'execute']) {
      assert.ok(!model.offered.has(n), `the model was offered deepagents' own ${n}`);
    }
    const ra = toolResults(a);
    assert.deepEqual(ra.map((r) => r.name), ['agentbox__write', 'agentbox__execute', 'agentbox__edit', 'agentbox__execute', 'agentbox__grep']);
    for (const r of ra) assert.notEqual(r.status, 'error', `${r.name}: ${r.text}`);
    assert.match(ra[1].text, /^hello from A\n/);
    assert.match(ra[1].text, /\[Command succeeded with exit code 0\]/);
    assert.match(ra[2].text, /Successfully replaced 1 instance/);
    assert.match(ra[3].text, /^goodbye from A\n/);
    // the model got the text; programs still get structuredContent, as the artifact
    assert.deepEqual(ra[3].structured, { output: 'goodbye from A\n', exit_code: 0, truncated: false, timed_out: false });
    assert.match(ra[4].text, /app\.py/);
    assert.match(ra[4].text, /print\('goodbye from A'\)/);
    assert.deepEqual(a.files ?? {}, {}, 'nothing went to the agent\'s own (in-state) filesystem');

    const b = await run(agent, 'thread-b', 'task-b: leave a note');
    const rb = toolResults(b);
    assert.deepEqual(rb.map((r) => r.name), ['agentbox__write', 'agentbox__ls']);
    assert.match(rb[1].text, /notes/);
    assert.doesNotMatch(rb[1].text, /app\.py/, 'thread B sees thread A\'s files');

    // A later turn of thread A: same sandbox, same files.
    const a2 = await run(agent, 'thread-a', 'and now?');
    const ra2 = toolResults(a2).slice(ra.length);
    assert.equal(ra2[0].name, 'agentbox__read');
    assert.match(ra2[0].text, /print\('goodbye from A'\)/);
    assert.equal(finalText(a2), 'app.py is still there.');
  } finally {
    await close();
  }

  // On disk: two sandboxes, each with its own workspace.
  const wa = workspaceOf(srv.stateDir, 'thread-a');
  const wb = workspaceOf(srv.stateDir, 'thread-b');
  assert.notEqual(wa, wb);
  assert.equal(fs.readFileSync(path.join(wa, 'app.py'), 'utf8'), "print('goodbye from A')\n");
  assert.ok(!fs.existsSync(path.join(wa, 'notes')));
  assert.equal(fs.readFileSync(path.join(wb, 'notes', 'b.txt'), 'utf8'), 'thread B was here\n');
  assert.ok(!fs.existsSync(path.join(wb, 'app.py')));

  // Through MCP, as any other client pinning the same threads would see them.
  const read = async (thread, file) => {
    const c = new Client({ name: `look-${thread}`, version: '1.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(srv.url), {
      requestInit: { headers: { Authorization: `Bearer ${token}`, 'Agentbox-Thread-Id': thread } },
    }));
    try {
      return await c.callTool({ name: 'read', arguments: { path: file } });
    } finally {
      await c.close();
    }
  };
  const fromA = await read('thread-a', 'app.py');
  assert.ok(!fromA.isError);
  assert.match(fromA.content[0].text, /goodbye from A/);
  const fromB = await read('thread-b', 'app.py');
  assert.equal(fromB.isError, true);
  assert.match(fromB.content[0].text, /app\.py': file_not_found/);
  assert.equal((await srv.stop()).code, 0);
});
