"""A LangChain deepagents agent whose files and commands live in agentbox sandboxes, one
sandbox per LangGraph thread, reached over Streamable HTTP. The Python twin of
examples/langchain-js/agent.mjs (which the test suite runs); see README.md.

    AGENTBOX_TOKEN=... ANTHROPIC_API_KEY=... python agent.py --thread demo "Write fib.py and run it"

- langchain-mcp-adapters turns agentbox's MCP tools into LangChain tools, prefixed with the
  server name (agentbox_execute, agentbox_write, ...): deepagents keeps its own ls, grep, glob
  and execute, and the names must not collide.
- A tool interceptor sends the LangGraph thread id as the Agentbox-Thread-Id header on every
  call, so each conversation thread gets its own sandbox even though the adapters open a new
  MCP session per call; a thread resumed later finds its files again.
- deepagents' own filesystem tools (files kept in the agent's state, not on a machine) are
  hidden from the model, so agentbox is the one filesystem it sees.
"""

import argparse
import asyncio
import os
import time

from deepagents import create_deep_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.interceptors import MCPToolCallRequest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config

DEEPAGENTS_FS_TOOLS = {"ls", "read_file", "write_file", "edit_file", "delete", "glob", "grep", "execute"}

SYSTEM_PROMPT = """You work in a Linux sandbox that belongs to this conversation.
Use the agentbox_* tools for every file and command: agentbox_write, agentbox_read,
agentbox_edit, agentbox_ls, agentbox_glob, agentbox_grep (literal text, not regex),
agentbox_execute (shell) and agentbox_execute_python. Relative paths are under the
workspace directory. Files persist between turns of this conversation."""


class AgentboxIsTheFilesystem(AgentMiddleware):
    """Hide deepagents' own filesystem tools from the model."""

    def wrap_model_call(self, request, handler):
        return handler(request.override(tools=[t for t in request.tools if getattr(t, "name", None) not in DEEPAGENTS_FS_TOOLS]))

    async def awrap_model_call(self, request, handler):
        return await handler(request.override(tools=[t for t in request.tools if getattr(t, "name", None) not in DEEPAGENTS_FS_TOOLS]))


def current_thread_id(request: MCPToolCallRequest):
    """The LangGraph thread of this tool call: from the tool's runtime, else the run's config."""
    config = getattr(request.runtime, "config", None)
    if config is None:
        try:
            config = get_config()
        except RuntimeError:  # called outside a LangGraph run
            return None
    return (config or {}).get("configurable", {}).get("thread_id")


async def pin_thread(request: MCPToolCallRequest, handler):
    """One sandbox per LangGraph thread: agentbox's thread rule 3 (the Agentbox-Thread-Id header)."""
    thread = current_thread_id(request)
    if thread is not None:
        request = request.override(headers={**(request.headers or {}), "Agentbox-Thread-Id": str(thread)})
    return await handler(request)


async def create_agentbox_agent(url=None, token=None, model=None, checkpointer=None):
    url = url or os.environ.get("AGENTBOX_URL", "http://127.0.0.1:8080/mcp")
    token = token or os.environ.get("AGENTBOX_TOKEN")
    model = model or os.environ.get("AGENTBOX_MODEL", "anthropic:claude-sonnet-4-5")
    connection = {"transport": "streamable_http", "url": url}
    if token:
        connection["headers"] = {"Authorization": f"Bearer {token}"}
    client = MultiServerMCPClient({"agentbox": connection}, tool_interceptors=[pin_thread], tool_name_prefix=True)
    tools = await client.get_tools()
    agent = create_deep_agent(
        model=model,
        tools=tools,
        system_prompt=SYSTEM_PROMPT,
        middleware=[AgentboxIsTheFilesystem()],
        checkpointer=checkpointer or InMemorySaver(),
    )
    return agent, tools


def final_text(result):
    content = result["messages"][-1].content
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content if b.get("type") == "text")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thread", default=f"thread-{int(time.time())}")
    parser.add_argument("task", nargs="*")
    args = parser.parse_args()
    task = " ".join(args.task) or "Write hello.py that prints a greeting, run it, and show me the output."
    agent, _ = await create_agentbox_agent()
    result = await agent.ainvoke({"messages": [{"role": "user", "content": task}]},
                                 {"configurable": {"thread_id": args.thread}})
    print(final_text(result))
    print(f"(thread {args.thread}: run again with --thread {args.thread} to continue in the same sandbox)")


if __name__ == "__main__":
    asyncio.run(main())
