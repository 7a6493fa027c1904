#!/usr/bin/env bash
# Install the JavaScript test clients (official MCP SDK, conformance suite, Inspector CLI,
# LangChain) from the lockfile, once; and Node 22 for the conformance suite (it needs
# fs.globSync), as the npm package "node" inside tests/js.
set -euo pipefail
cd "$(dirname "$0")/../tests/js"
[ -f package.json ] || exit 0
stamp=node_modules/.agentbox-stamp
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "agentbox: npm is needed for the tests (apt-get install npm)" >&2; exit 1; }
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
touch "$stamp"
