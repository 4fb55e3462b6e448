#!/usr/bin/env bash
# Runs every test: setup (idempotent: packages, npm ci, build when stale), then mocha over
# the compiled suites in dist/test. Prints mocha's summary and a closing
# "tests: N passed, N failed, N skipped" line; exits non-zero when a test failed or the
# TypeScript build reported errors (CISTERN_ALLOW_TYPE_ERRORS=1 to only warn).
#
#   npm test                       # everything
#   npm test -- --grep 'dir pool'  # extra arguments go to mocha
#   CISTERN_SUITES="unit integration" npm test
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }
if [ ! -f dist/.build-stamp ] && [ ! -f dist/.build-errors ]; then
  # setup skipped the build (CISTERN_SKIP_BUILD) and nothing was ever built: build now.
  npm run build --silent || echo "test: build reported errors; running what was emitted" >&2
fi

# Compiled tests whose TypeScript source is gone would still run: remove them.
if [ -d dist/test ]; then
  while IFS= read -r -d '' js; do
    src="${js#dist/}"; src="${src%.js}.ts"
    [ -f "$src" ] || { echo "test: removing stale $js (no $src)" >&2; rm -f "$js" "$js.map"; }
  done < <(find dist/test -name '*.test.js' -print0)
fi

suites=(${CISTERN_SUITES:-support unit integration backends e2e})
specs=()
for s in "${suites[@]}"; do
  if [ -n "$(find "dist/test/$s" -name '*.test.js' -print -quit 2>/dev/null)" ]; then
    specs+=("dist/test/$s/**/*.test.js")
  else
    echo "test: no tests in dist/test/$s" >&2
  fi
done
if [ "${#specs[@]}" = 0 ]; then echo "test: no test files found under dist/test" >&2; exit 1; fi

# A safety net so a hung test cannot hold CI: mocha's own per-test timeout is in .mocharc.json.
limit="${CISTERN_TEST_TIME_LIMIT:-900}"
color=()
[ -t 1 ] || color=(--no-color) # plain text in CI logs
timeout --signal=TERM --kill-after=30 "$limit" npx mocha "${color[@]}" "${specs[@]}" "$@" </dev/null
rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "test: mocha did not finish within ${limit}s and was stopped" >&2
fi

if [ -f dist/.build-errors ]; then
  echo "test: the TypeScript build reported errors:" >&2
  grep -E 'error TS[0-9]+' dist/.build-errors | head -50 >&2
  if [ "${CISTERN_ALLOW_TYPE_ERRORS:-0}" != 1 ] && [ "$rc" = 0 ]; then rc=1; fi
fi
exit "$rc"
