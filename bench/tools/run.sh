#!/usr/bin/env bash
# Per-tool latency through MCP stdio, agentbox next to @modelcontextprotocol/server-filesystem
# (see bench.mjs). Builds the release tree in $BUILD (default build/, RelWithDebInfo) and the
# JS dependencies (tests/js, which pins the reference server's version) first.
#   bench/tools/run.sh [--iterations N] [--warmup N] [--json]
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build agentbox
"$root/scripts/js-deps.sh"
AGENTBOX_BIN="$build/agentbox" exec node "$root/bench/tools/bench.mjs" "$@"
