#!/usr/bin/env bash
# Installs what stackbus needs on a Debian machine with Node 20 and npm: nats-server, git,
# gawk and what DevStack mode's tests need from Debian when absent, the npm packages
# (npm ci), and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck) # for the lint step of scripts/test.sh
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v gawk >/dev/null 2>&1 || missing+=(gawk)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# What DevStack's own stack.sh calls unconditionally, for DevStack mode and its tests
# (docs/devstack-mode.md): sudo, uuidgen, iptables, apache2's a2enmod, python3 venvs.
command -v sudo >/dev/null 2>&1 || missing+=(sudo)
command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v a2enmod >/dev/null 2>&1 || missing+=(apache2)
/usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]} > 0)); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

export TURBO_TELEMETRY_DISABLED=1
echo "setup: npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "setup: build"
npm run build --silent
