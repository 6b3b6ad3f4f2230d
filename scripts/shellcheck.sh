#!/usr/bin/env bash
# Runs shellcheck (Debian package `shellcheck`, installed by setup.sh) on the bash helper
# library, the agent's session script and DevStack-mode pause points, and scripts/. Settings: .shellcheckrc. Any finding fails.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(packages/bashlib/bash/**/*.sh services/agent/bash/*.sh scripts/*.sh)
shellcheck "${files[@]}"
echo "shellcheck: ${#files[@]} files, no findings"
