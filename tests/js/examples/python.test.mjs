// The Python LangChain example cannot be installed here (no PyPI), so it is checked as far as
// it can be: it parses as Python 3, and it makes the same choices as the JS example that
// langchain.test.mjs runs (prefixed tool names, the thread header, deepagents' own file tools
// hidden).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { src, run } from './lib.mjs';

const file = path.join(src, 'examples', 'langchain-python', 'agent.py');

test('examples/langchain-python/agent.py parses', () => {
  const r = run('/usr/bin/python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', file]);
  assert.equal(r.status, 0, r.stderr);
});

test('it makes the same choices as the JS example', () => {
  const py = fs.readFileSync(file, 'utf8');
  const js = fs.readFileSync(path.join(src, 'examples', 'langchain-js', 'agent.mjs'), 'utf8');
  for (const [what, inPy, inJs] of [
    ['tool names prefixed with the server name', /tool_name_prefix=True/, /prefixToolNameWithServerName: true/],
    ['the thread header', /"Agentbox-Thread-Id"/, /'Agentbox-Thread-Id'/],
    ["deepagents' own file tools hidden", /AgentboxIsTheFilesystem/, /AgentboxIsTheFilesystem/],
    ['Streamable HTTP', /"streamable_http"/, /transport: 'http'/],
  ]) {
    assert.match(py, inPy, `Python: ${what}`);
    assert.match(js, inJs, `JS: ${what}`);
  }
  const fsTools = (text) => JSON.stringify([...text.matchAll(/"(ls|read_file|write_file|edit_file|delete|glob|grep|execute)"|'(ls|read_file|write_file|edit_file|delete|glob|grep|execute)'/g)].map((m) => m[1] || m[2]).slice(0, 8));
  assert.equal(fsTools(py), fsTools(js));
});
