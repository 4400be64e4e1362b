#!/usr/bin/env bash
# Builds Caravan, starts a dev agent (server + client, HTTP on 127.0.0.1:4646) in the
# background, writes the example job with `caravan job init` and runs it. The agent keeps
# running afterwards: try `target/release/caravan status example`; stop it with
# `kill $(cat /tmp/caravan-dev/agent.pid)`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin caravan
bin="$PWD/target/release/caravan"
work=/tmp/caravan-dev
mkdir -p "$work"
if [ -f "$work/agent.pid" ] && kill -0 "$(cat "$work/agent.pid")" 2>/dev/null; then
  echo "==> A dev agent is already running (pid $(cat "$work/agent.pid"))"
else
  "$bin" agent -dev >"$work/agent.log" 2>&1 &
  echo $! >"$work/agent.pid"
  echo "==> Dev agent started (pid $!, log $work/agent.log)"
fi
for _ in $(seq 1 50); do
  "$bin" node status 2>/dev/null | grep -q ready && break
  sleep 0.2
done
cd "$work"
rm -f example.nomad.hcl
"$bin" job init
"$bin" job run example.nomad.hcl
"$bin" status example
