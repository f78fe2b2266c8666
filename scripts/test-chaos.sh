#!/usr/bin/env bash
# `npm run test:chaos`: the fault and abuse suite (test/faults) with its long
# versions: hundreds of seeded drop/resume runs, more concurrent streams under
# pub/sub kills, and the slow cases (slowloris). Bounded in time; every process
# and server it starts belongs to vitest, which stops them when it exits.
#   SLUICE_CHAOS_RUNS   runs of the seeded cases (default 200)
#   SLUICE_CHAOS_SEED   first seed (a failure names its seed; rerun it with SLUICE_CHAOS_RUNS=1)
#   SLUICE_CHAOS_TIMEOUT_S  wall-clock bound for the whole run (default 2400)
#   SLUICE_FUZZ_RUNS    fuzzed requests per route (default 1500: 21,000 over the 14 routes)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
export SLUICE_CHAOS_RUNS="${SLUICE_CHAOS_RUNS:-200}"
export SLUICE_CHAOS_SEED="${SLUICE_CHAOS_SEED:-$(date +%s)}"
export SLUICE_FUZZ_RUNS="${SLUICE_FUZZ_RUNS:-1500}"
export SLUICE_FUZZ_SEED="${SLUICE_FUZZ_SEED:-$SLUICE_CHAOS_SEED}"
timeout_s="${SLUICE_CHAOS_TIMEOUT_S:-2400}"
mkdir -p test-artifacts
echo "== chaos: runs=$SLUICE_CHAOS_RUNS seed=$SLUICE_CHAOS_SEED fuzz=${SLUICE_FUZZ_RUNS}/route bound=${timeout_s}s"
status=0
# --kill-after: vitest gets SIGTERM first so its global teardown stops redis-server and PostgreSQL.
timeout --kill-after=30 "$timeout_s" vitest run test/faults test/support test/deploy test/chat/route-fuzzing.property.test.ts --reporter=default --reporter=json \
  --outputFile.json=test-artifacts/chaos.json --testTimeout=600000 --hookTimeout=300000 "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/chaos.json", "utf8"));
  console.log(`chaos: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  for (const file of r.testResults) for (const test of file.assertionResults)
    console.log(`  ${test.status.padEnd(7)} ${Math.round(test.duration ?? 0).toString().padStart(7)} ms  ${test.fullName}`);
' || true
exit $status
