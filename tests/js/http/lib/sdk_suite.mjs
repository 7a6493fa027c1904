// The end-to-end checks run with the official TypeScript SDK client over every transport:
// initialize, tools/list, tools/call, progress, cancellation, logging, errors.
//
// sdkSuite(kind, connect) registers node:test cases; connect(clientCapabilities) must
// return {client, log: () => serverStderr, transport, close()} for a fresh connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { waitFor, withTimeout } from './server.mjs';

export const FIXTURE_TOOLS = [
  'test_simple_text', 'test_image_content', 'test_audio_content', 'test_embedded_resource',
  'test_multiple_content_types', 'test_tool_with_logging', 'test_error_handling',
  'test_tool_with_progress', 'test_sampling', 'test_elicitation', 'test_reconnection',
  'json_schema_2020_12_tool',
];

export function sdkSuite(kind, connect) {
  test(`${kind}: initialize negotiates 2025-11-25 and reports agentbox`, async () => {
    const c = await connect();
    try {
      const info = c.client.getServerVersion();
      assert.equal(info.name, 'agentbox');
      const caps = c.client.getServerCapabilities();
      assert.ok(caps.tools, 'tools capability');
      assert.ok(caps.logging, 'logging capability');
      assert.match(c.client.getInstructions() ?? '', /sandbox/);
    } finally {
      await c.close();
    }
  });

  test(`${kind}: tools/list lists the fixtures with schemas`, async () => {
    const c = await connect();
    try {
      const { tools } = await c.client.listTools();
      const names = tools.map((t) => t.name);
      for (const n of FIXTURE_TOOLS) assert.ok(names.includes(n), `tool ${n} listed`);
      for (const t of tools) {
        assert.equal(t.inputSchema.type, 'object', `${t.name} inputSchema`);
        assert.match(t.name, /^[a-zA-Z0-9_-]{1,64}$/);
      }
    } finally {
      await c.close();
    }
  });

  test(`${kind}: tools/call returns content; tool errors and unknown tools are told apart`, async () => {
    const c = await connect();
    try {
      const r = await c.client.callTool({ name: 'test_simple_text', arguments: {} });
      assert.deepEqual(r.content, [{ type: 'text', text: 'This is a simple text response for testing.' }]);
      const img = await c.client.callTool({ name: 'test_image_content', arguments: {} });
      assert.equal(img.content[0].type, 'image');
      assert.equal(img.content[0].mimeType, 'image/png');
      const e = await c.client.callTool({ name: 'test_error_handling', arguments: {} });
      assert.equal(e.isError, true);
      await assert.rejects(c.client.callTool({ name: 'no_such_tool', arguments: {} }),
        (err) => err instanceof McpError && err.code === -32602 && /no_such_tool/.test(err.message));
    } finally {
      await c.close();
    }
  });

  test(`${kind}: progress notifications arrive in order before the result`, async () => {
    const c = await connect();
    try {
      const progress = [];
      // The SDK client handles notifications on a later microtask but responses at once, so
      // a progress notification read in the same chunk as the result reaches it after the
      // request is settled; it then reports "unknown token" through onerror instead of
      // calling onprogress (typescript-sdk 1.32.2 shared/protocol.js). Count those too: what
      // matters is that the server sent every notification, in order, before the result.
      const late = [];
      c.client.onerror = (e) => {
        const m = /progress notification for an unknown token: (.*)$/s.exec(String(e?.message));
        if (m) late.push(JSON.parse(m[1]).params);
      };
      const r = await c.client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined,
        { onprogress: (p) => progress.push(p) });
      await new Promise((res) => setImmediate(res));
      const all = [...progress, ...late];
      assert.deepEqual(all.map((p) => p.progress), [0, 50, 100]);
      assert.ok(all.every((p) => p.total === 100));
      assert.ok(progress.length >= 2, 'at least the notifications sent while the tool ran arrive in time');
      assert.equal(r.content[0].text, 'Tool with progress executed successfully');
    } finally {
      await c.close();
    }
  });

  test(`${kind}: logging/setLevel filters notifications/message`, async () => {
    const c = await connect();
    try {
      const logs = [];
      c.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push(n.params); });
      await c.client.setLoggingLevel('info');
      await c.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
      assert.deepEqual(logs.map((l) => [l.level, l.data]), [
        ['info', 'Tool execution started'], ['info', 'Tool processing data'], ['info', 'Tool execution completed']]);
      await c.client.setLoggingLevel('error');
      await c.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
      assert.equal(logs.length, 3, 'info messages are dropped at level error');
    } finally {
      await c.close();
    }
  });

  test(`${kind}: cancellation stops a call blocked on the client and the server stays responsive`, async () => {
    const c = await connect({ elicitation: {} });
    try {
      let elicitAborted = false;
      let sawElicit;
      const elicited = new Promise((resolve) => { sawElicit = resolve; });
      c.client.setRequestHandler(ElicitRequestSchema, (req, extra) => new Promise((_, reject) => {
        sawElicit(req);
        extra.signal.addEventListener('abort', () => { elicitAborted = true; reject(new Error('cancelled')); });
      }));
      const ac = new AbortController();
      const call = c.client.callTool({ name: 'test_elicitation', arguments: { message: 'never answered' } },
        undefined, { signal: ac.signal, timeout: 30000 });
      const req = await withTimeout(elicited, 10000, 'the server did not send elicitation/create');
      assert.equal(req.params.message, 'never answered');
      ac.abort('the test cancels');
      await assert.rejects(call);
      // The server got notifications/cancelled, cancelled the call, and withdrew its own
      // pending elicitation request with notifications/cancelled.
      await waitFor(() => /call\.cancel .*found=yes/.test(c.log()), 10000, 'call.cancel in the server log');
      await waitFor(() => /call\.done .*tool=test_elicitation .*cancelled=yes/.test(c.log()), 10000, 'call.done cancelled');
      await waitFor(() => elicitAborted, 10000, 'the elicitation request to be cancelled by the server');
      await c.client.ping();
      const r = await c.client.callTool({ name: 'test_simple_text', arguments: {} });
      assert.equal(r.content[0].text, 'This is a simple text response for testing.');
    } finally {
      await c.close();
    }
  });

  test(`${kind}: server->client requests (elicitation) round-trip`, async () => {
    const c = await connect({ elicitation: {} });
    try {
      c.client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { username: 'ada', email: 'ada@example.com' } }));
      const r = await c.client.callTool({ name: 'test_elicitation', arguments: { message: 'who are you?' } });
      assert.equal(r.content[0].text, 'User response: action=accept, content={"username":"ada","email":"ada@example.com"}');
    } finally {
      await c.close();
    }
  });
}
