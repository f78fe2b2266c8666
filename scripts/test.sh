#!/usr/bin/env bash
# `npm test`: everything CI runs. Installs what is missing, then type check,
# lint and the whole vitest suite against real redis-server and PostgreSQL
# (started by test/global-setup.ts in temporary directories).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-install.sh
bash scripts/ensure-system-packages.sh
if [ -f scripts/ensure-chromium.sh ]; then bash scripts/ensure-chromium.sh; fi
export PATH="$PWD/node_modules/.bin:$PATH"
echo "node $(node --version)"
if [ -f web/vite.config.ts ]; then
  echo "== build web UI"
  # React's production build, whatever NODE_ENV the caller has.
  NODE_ENV=production npm run --silent build:web
fi
echo "== type check"
tsc --noEmit -p .
if [ -f web/tsconfig.json ]; then tsc --noEmit -p web; fi
echo "== lint"
eslint --max-warnings=0 .
echo "== tests"
mkdir -p test-artifacts
status=0
vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || status=$?
# One plain closing line that any CI log reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
