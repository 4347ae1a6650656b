#!/usr/bin/env bash
# Starts Switchyard in the background: pid file and log under data/. Stop it with
# ./stop_proxy_system.sh. Environment variables (API keys, ports) are passed through.
set -euo pipefail
cd "$(dirname "$0")"
DATA_DIR="${SWITCHYARD_DATA_DIR:-data}"
mkdir -p "$DATA_DIR"
PID_FILE="$DATA_DIR/switchyard.pid"
LOG_FILE="$DATA_DIR/switchyard.log"
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  echo "Switchyard is already running (pid $(cat "$PID_FILE"))."
  exit 0
fi
[ -d node_modules ] || npm install --no-audit --no-fund
nohup node --import tsx server/main.ts >>"$LOG_FILE" 2>&1 &
echo $! >"$PID_FILE"
PORT="${CLAUDE_PROXY_PORT:-3100}"
for _ in $(seq 1 50); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
    echo "Switchyard started (pid $(cat "$PID_FILE")): proxy http://127.0.0.1:$PORT, admin http://127.0.0.1:${ADMIN_DASHBOARD_PORT:-3200}, log $LOG_FILE"
    exit 0
  fi
  if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    echo "Switchyard failed to start; last log lines:" >&2
    tail -n 20 "$LOG_FILE" >&2
    rm -f "$PID_FILE"
    exit 1
  fi
  sleep 0.2
done
echo "Switchyard is starting (pid $(cat "$PID_FILE")); not answering on :$PORT yet, see $LOG_FILE"
