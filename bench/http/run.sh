#!/usr/bin/env bash
# HTTP transport figures: N sessions with slow calls in flight, ping latency, server memory
# and threads (bench/http/sessions.mjs). Builds the release tree in $BUILD (default build/).
#   bench/http/run.sh [--sessions N] [--json]
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build agentbox
"$root/scripts/js-deps.sh"
AGENTBOX_BIN="$build/agentbox" exec node "$root/bench/http/sessions.mjs" "$@"
