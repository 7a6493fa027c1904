#!/usr/bin/env bash
# Install what agentbox needs on Debian 12, only when something is missing.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh test     also what the test suite needs (python3, bubblewrap, clang, ...)
# Needs root (or passwordless sudo) only when a package is actually missing.
set -euo pipefail

want=(pkg-config cmake make gcc libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev
      libyaml-dev libseccomp-dev)
if [ "${1:-}" = test ]; then
  # python3: execute_python inside sandboxes; bubblewrap: the benchmark baseline;
  # clang + libclang-rt: libFuzzer targets; valgrind: memcheck of the e2e smoke test;
  # iproute2: network isolation checks;
  # python3-prometheus-client: the Prometheus text-format parser that checks /metrics;
  # groff-base: renders the man page in its test.
  want+=(python3 bubblewrap clang libclang-rt-14-dev valgrind iproute2 procps
         python3-prometheus-client groff-base)
  # The JavaScript test clients install with npm. A machine without npm gets Debian's nodejs
  # and npm (Node 18): enough for npm, and scripts/js-deps.sh adds Node 22 from the npm
  # registry, which then runs the tests (tests/CMakeLists.txt).
  command -v npm >/dev/null || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "agentbox: installing missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=sudo
else
  echo "agentbox: these packages are missing and installing them needs root:" >&2
  echo "    sudo apt-get install -y ${missing[*]}" >&2
  echo "  run that once, then run make again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Update the index first when a plain install cannot find a package (fresh image).
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/agentbox-apt.log 2>&1; then
  $SUDO apt-get update >>/tmp/agentbox-apt.log 2>&1 || true
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/agentbox-apt.log 2>&1; then
    echo "agentbox: apt-get install failed; see /tmp/agentbox-apt.log" >&2
    tail -n 20 /tmp/agentbox-apt.log >&2
    exit 1
  fi
fi
echo "agentbox: dependencies installed" >&2
