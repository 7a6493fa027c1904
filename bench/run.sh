#!/usr/bin/env bash
# The local provider's figures next to their baselines (fork+exec of /bin/true, and
# Debian's bubblewrap per command), all measured in one run by bench/local/bench_local.c.
#   bench/run.sh [--iterations N] [--sandboxes N] [--only LIST] [--set KEY=VALUE]... [--json]
# Builds the release tree in $BUILD (default build/) first. Needs root or working user
# namespaces, like the local provider itself; bubblewrap for its baseline
# (apt-get install bubblewrap). The Kubernetes figures are bench/k8s/run.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_build agentbox bench_local
command -v bwrap >/dev/null || echo "note: bwrap not found; its baseline is skipped" >&2
AGENTBOX_BIN="$build/agentbox" exec "$build/bench/bench_local" "$@"
