#!/usr/bin/env bash
# Sets up (see setup.sh), checks the code (eslint with the dependency rules of
# docs/architecture.md, shellcheck, generated docs current), and runs the whole test suite.
# Any finding fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TURBO_TELEMETRY_DISABLED=1
echo "test: lint"
npm run lint --silent
echo "test: tests"
npm test
