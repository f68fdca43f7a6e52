#!/bin/sh
# npm run bench:peers: installs the peers bench/n8n.ts measures pai against (n8n) into bench/peers
# only, never into the project. n8n needs, on this machine and npm registry (issue 12): the
# overrides in package.json (upstream fetches xlsx from a CDN; a langgraph peer mismatch breaks
# `n8n start`), --legacy-peer-deps, --ignore-scripts (isolated-vm does not build; the bench runs
# n8n with N8N_EXPRESSION_ENGINE=legacy instead), then sqlite3's native binding built on its own.
# Cached: the stamp holds a hash of package.json, so a second run does nothing until it changes.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.pai-bench-peers
want=$(sha256sum package.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "bench/peers: already installed ($(du -sh node_modules | cut -f1)); delete bench/peers/node_modules to reinstall"
  exit 0
fi
rm -f "$stamp"
start=$(date +%s)
npm install --legacy-peer-deps --ignore-scripts --no-audit --no-fund
npm rebuild sqlite3
echo "$want" > "$stamp"
echo "bench/peers: installed in $(( $(date +%s) - start )) s, $(du -sh node_modules | cut -f1)"
