#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than package-lock.json. Needs only
# Node.js and npm: this is all `npm run demo` sets up (it falls back to the embedded broker).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules/.bin ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
