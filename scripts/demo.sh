#!/usr/bin/env bash
# Sets up (see setup.sh) and runs the demo lab: a controller and two computes as local
# agents, stacked in lockstep with example extras.d hooks and an example plugin served
# from a local git HTTP server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx stackbus demo "$@"
