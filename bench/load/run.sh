#!/usr/bin/env bash
# Load test: 1,000 concurrent HTTP sessions over 50 conversation threads making mixed tool
# calls for 4 minutes (bench/load/load.mjs); loopback only, bounded in time. Fails on any
# failed call or when the server's RSS grows after warm-up. Builds the release tree in $BUILD
# (default build/).
#   bench/load/run.sh [--sessions N] [--threads T] [--duration S] [--think-ms M] [--json FILE]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target agentbox -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
"$root/scripts/js-deps.sh"
# 1,000 sessions keep about 1,100 sockets open on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
AGENTBOX_BIN="$build/agentbox" exec node "$root/bench/load/load.mjs" "$@"
