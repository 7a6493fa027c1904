#!/usr/bin/env bash
# HTTP transport figures: N sessions with slow calls in flight, ping latency, server memory
# and threads (bench/http/sessions.mjs). Builds the release tree in $BUILD (default build/).
#   bench/http/run.sh [--sessions N] [--json]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target agentbox -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
"$root/scripts/js-deps.sh"
AGENTBOX_BIN="$build/agentbox" exec node "$root/bench/http/sessions.mjs" "$@"
