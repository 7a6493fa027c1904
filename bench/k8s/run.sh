#!/usr/bin/env bash
# Kubernetes-path figures on loopback (see bench_k8s.c). Builds the bench against the
# release build in build/ (run `make build` first) and runs it against the test cluster.
#   bench/k8s/run.sh [ITERATIONS]     default 200
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$root/build}"
[ -f "$build/libagentbox_core.a" ] || { echo "build first: make build" >&2; exit 1; }
out="$build/bench_k8s"
cc -O2 -std=gnu11 -D_GNU_SOURCE -DAGENTBOX_VERSION='"bench"' -I"$root/src" -I"$root/tests/unit" \
  "$root/bench/k8s/bench_k8s.c" "$root/tests/unit/support/k8s_cluster.c" \
  "$build/libagentbox_core.a" \
  $(pkg-config --cflags --libs jansson libmicrohttpd libcurl yaml-0.1 libseccomp) -lpthread \
  -o "$out"
AGENTBOX_SOURCE_DIR="$root" AGENTBOX_BIN="$build/agentbox" "$out" "${1:-200}" 2>/dev/null
