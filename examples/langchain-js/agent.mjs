// A LangChain deepagents agent whose files and commands live in agentbox sandboxes, one
// sandbox per LangGraph thread, reached over Streamable HTTP.
//
//   AGENTBOX_TOKEN=... ANTHROPIC_API_KEY=... node agent.mjs --thread demo "Write fib.py and run it"
//
// How it fits together:
// - @langchain/mcp-adapters turns agentbox's MCP tools into LangChain tools. They are
//   prefixed with the server name (agentbox__execute, agentbox__write, ...): deepagents
//   refuses tools named like its own (ls, grep, glob, execute).
// - Each tool call carries the LangGraph thread id as the Agentbox-Thread-Id header (the
//   adapters' beforeToolCall hook), so every conversation thread gets its own sandbox even
//   though the adapters may use a fresh MCP session per call; a thread resumed later, from
//   another process or another agentbox replica, finds its files again.
// - deepagents' own filesystem tools (which keep files in the agent's state, not on a
//   machine) are hidden from the model, so agentbox is the one filesystem it sees;
//   subagents (the task tool) stay, and see the same agentbox tools.
import { createDeepAgent } from 'deepagents';
import { MultiServerMCPClient } from '@langchain/mcp-adapters';
import { MemorySaver } from '@langchain/langgraph';
import { createMiddleware } from 'langchain';

const DEEPAGENTS_FS_TOOLS = new Set(['ls', 'read_file', 'write_file', 'edit_file', 'delete', 'glob', 'grep', 'execute']);

const agentboxIsTheFilesystem = createMiddleware({
  name: 'AgentboxIsTheFilesystem',
  wrapModelCall: (request, handler) =>
    handler({ ...request, tools: request.tools.filter((t) => !DEEPAGENTS_FS_TOOLS.has(t.name)) }),
});

const SYSTEM_PROMPT = `You work in a Linux sandbox that belongs to this conversation.
Use the agentbox__* tools for every file and command: agentbox__write, agentbox__read,
agentbox__edit, agentbox__ls, agentbox__glob, agentbox__grep (literal text, not regex),
agentbox__execute (shell) and agentbox__execute_python. Relative paths are under the
workspace directory. Files persist between turns of this conversation.`;

// Returns {agent, tools, close}. model: a LangChain chat model, or a "provider:model" string
// (which needs that provider's package, e.g. @langchain/anthropic).
export async function createAgentboxAgent({
  url = process.env.AGENTBOX_URL || 'http://127.0.0.1:8080/mcp',
  token = process.env.AGENTBOX_TOKEN,
  model = process.env.AGENTBOX_MODEL || 'anthropic:claude-sonnet-4-5',
  checkpointer = new MemorySaver(),
} = {}) {
  const auth = token ? { Authorization: `Bearer ${token}` } : {};
  const client = new MultiServerMCPClient({
    mcpServers: {
      agentbox: { transport: 'http', url, headers: auth, automaticSSEFallback: false },
    },
    prefixToolNameWithServerName: true,
    useStandardContentBlocks: false,
    // One sandbox per LangGraph thread: agentbox's thread rule 3 (the Agentbox-Thread-Id
    // header). The adapters open one connection per distinct header set, and that
    // connection's headers replace the server's, so the token goes along.
    beforeToolCall: (_call, _state, config) => {
      const thread = config?.configurable?.thread_id;
      return thread ? { headers: { ...auth, 'Agentbox-Thread-Id': String(thread) } } : undefined;
    },
    // agentbox's tool texts are the ones deepagents' own tools return (gutters, footers,
    // notices) and models are tuned on them; the adapters would hand the model that text
    // merged with structuredContent as one JSON string. Give it the text; structuredContent
    // stays in the ToolMessage's artifact for programs.
    afterToolCall: ({ result: [content, artifacts] }) => {
      const [block, ...more] = Array.isArray(content) ? content : [content];
      if (more.length || block?.type !== 'text') return undefined; // media etc.: as they are
      const structured = block.structuredContent
        ? [{ type: 'mcp_structured_content', data: block.structuredContent }] : [];
      return { result: [block.text, [...artifacts, ...structured]] };
    },
  });
  const tools = await client.getTools();
  const agent = createDeepAgent({
    model,
    tools,
    systemPrompt: SYSTEM_PROMPT,
    middleware: [agentboxIsTheFilesystem],
    checkpointer,
  });
  return { agent, tools, close: () => client.close() };
}

// The last message of a run, as text.
export function finalText(result) {
  const last = result.messages.at(-1);
  return typeof last.content === 'string' ? last.content
    : last.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

async function main(argv) {
  const i = argv.indexOf('--thread');
  const thread = i >= 0 ? argv.splice(i, 2)[1] : `thread-${Date.now()}`;
  const task = argv.join(' ') || 'Write hello.py that prints a greeting, run it, and show me the output.';
  const { agent, close } = await createAgentboxAgent();
  try {
    const result = await agent.invoke({ messages: [{ role: 'user', content: task }] },
      { configurable: { thread_id: thread } });
    console.log(finalText(result));
    console.error(`(thread ${thread}: run again with --thread ${thread} to continue in the same sandbox)`);
  } finally {
    await close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); });
}
