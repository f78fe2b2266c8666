#!/usr/bin/env bash
# Installs the npm dependencies (including Node 24 itself, pinned as the `node`
# devDependency) when node_modules is missing or older than the lockfile.
# npm start and npm test both call this, so a fresh clone needs no other step.
set -euo pipefail
cd "$(dirname "$0")/.."
marker=node_modules/.package-lock.json
if [ ! -f "$marker" ] || [ package-lock.json -nt "$marker" ] || [ ! -x node_modules/.bin/node ]; then
  echo "sluice: installing npm dependencies (npm ci)…" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
