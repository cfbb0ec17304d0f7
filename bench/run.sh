#!/usr/bin/env bash
# Runs vigil's benchmarks and prints their figures. Everything stays on 127.0.0.1 and stops by
# itself. Usage: bench/run.sh [sessions|decode|reconnect|all] (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
go build -o bin/ ./cmd/... ./bench/sessions

if [[ $what == all || $what == sessions ]]; then
  echo "== sessions: ${CAMERAS:-625} cameras, 720p 25 fps 1.5 Mb/s CBR, one draining reader per camera"
  ./bin/sessions --cameras "${CAMERAS:-625}" --window "${WINDOW:-30s}" 2> >(grep -v 'level=INFO' >&2)
fi
if [[ $what == all || $what == decode ]]; then
  echo "== decode: camsim 720p clip, one thread, against the ffmpeg CLI in the same run"
  go test -run '^$' -bench . -benchtime 2x ./streams/decode/ | grep -E '^Benchmark'
fi
if [[ $what == all || $what == reconnect ]]; then
  echo "== reconnect: camera away 0.2–3 s, default backoff 1 s → 30 s"
  go test -run '^$' -bench Reconnect -benchtime 10x ./streams/rtsp/ | grep -E '^Benchmark'
fi
