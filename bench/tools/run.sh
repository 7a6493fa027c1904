#!/usr/bin/env bash
# Per-tool latency through MCP stdio, agentbox next to @modelcontextprotocol/server-filesystem
# (see bench.mjs). Builds the release tree in $BUILD (default build/, RelWithDebInfo) and the
# JS dependencies (tests/js, which pins the reference server's version) first.
#   bench/tools/run.sh [--iterations N] [--warmup N] [--json]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target agentbox -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
"$root/scripts/js-deps.sh"
AGENTBOX_BIN="$build/agentbox" exec node "$root/bench/tools/bench.mjs" "$@"
