#!/usr/bin/env bash
# Load test: 1,000 concurrent HTTP sessions over 50 conversation threads making mixed tool
# calls for 4 minutes (bench/load/load.mjs); loopback only, bounded in time. Fails on any
# failed call or when the server's RSS grows after warm-up. Builds the release tree in $BUILD
# (default build/).
#   bench/load/run.sh [--sessions N] [--threads T] [--duration S] [--think-ms M] [--json FILE]
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build agentbox
"$root/scripts/js-deps.sh"
# 1,000 sessions keep about 1,100 sockets open on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
AGENTBOX_BIN="$build/agentbox" exec node "$root/bench/load/load.mjs" "$@"
