#!/usr/bin/env bash
# Stops the Switchyard started by start_proxy_system.sh: SIGTERM (in-flight requests finish and
# queued writes are flushed), then SIGKILL if it is still running after the grace period.
set -euo pipefail
cd "$(dirname "$0")"
PID_FILE="${SWITCHYARD_DATA_DIR:-data}/switchyard.pid"
if [ ! -f "$PID_FILE" ]; then
  echo "Switchyard is not running (no $PID_FILE)."
  exit 0
fi
PID="$(cat "$PID_FILE")"
if ! kill -0 "$PID" 2>/dev/null; then
  echo "Switchyard is not running (stale pid $PID)."
  rm -f "$PID_FILE"
  exit 0
fi
kill -TERM "$PID"
for _ in $(seq 1 150); do
  if ! kill -0 "$PID" 2>/dev/null; then
    rm -f "$PID_FILE"
    echo "Switchyard stopped."
    exit 0
  fi
  sleep 0.1
done
echo "Switchyard did not stop within 15 s; sending SIGKILL." >&2
kill -KILL "$PID" 2>/dev/null || true
rm -f "$PID_FILE"
