#!/usr/bin/env bash
# `npm start`: installs what is missing, builds the web UI, starts API + worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-install.sh
export PATH="$PWD/node_modules/.bin:$PATH"
if [ -f web/vite.config.ts ]; then npm run --silent build:web >&2; fi
exec node src/main/cli.ts "${@:-start}"
