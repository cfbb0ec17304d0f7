#!/usr/bin/env bash
# Runs vigil's benchmarks and prints their figures. Everything stays on 127.0.0.1 and stops by
# itself. Usage: bench/run.sh [site|cluster|faces|eadoors|sessions|record|decode|reconnect|recognizers|latency|capacity|accuracy|store|vectors|search|doors|import|unlock|live|attack|all]
# (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
go build -o bin/ ./cmd/... ./bench/...

if [[ $what == all || $what == site ]]; then
  echo "== site: camsim --activity site --peak --substream 640x360 (street, door and gate cameras in the site's mix) analysed in one process; the largest N meeting every target with sub-streams and in today's configuration, then where the time goes at that N"
  ./bin/site --cameras "${SITE_CAMERAS:-60,120,180,240,300,360}" --today "${TODAY_CAMERAS:-10,20,30,40,50}" --window "${WINDOW:-90s}" --profile "${SITE_PROFILE:-/tmp/vigil-site.pprof}"
fi
if [[ $what == all || $what == cluster ]]; then
  echo "== cluster: three vigil serve processes on three clustered nats-server processes, ${CLUSTER_CAMERAS:-30} camsim cameras recorded to versitygw; kill -9 failover over ${KILLS:-10} kills, SIGTERM handover, overhead against one node in the same run, sizing on paper"
  ./bin/cluster --cameras "${CLUSTER_CAMERAS:-30}" --kills "${KILLS:-10}" --window "${WINDOW:-30s}"
fi
if [[ $what == all || $what == faces ]]; then
  echo "== faces: FNIR at FPIR 1% / 0.3% for galleries of 100–39,000, East-Asian faces apart, each face model side by side (plot: bench/faces.png)"
  ./bin/faces --png bench/faces.png
fi
if [[ $what == all || $what == eadoors ]]; then
  echo "== East-Asian doors: camsim with only East-Asian faces, two towers, ${EA_DOOR_LOOPS:-10} loops of a 34 s clip; false opens against attempts"
  for model in intel-0095 dlib-v1; do
    echo "-- $model"
    VIGIL_FACE_MODEL=$model EA_DOOR_LOOPS=${EA_DOOR_LOOPS:-10} go test -count=1 -run TestEastAsianDoorsNoFalseOpens -v -timeout 30m ./cmd/vigil/ | grep -E 'attempts at door cameras|false open|PASS|FAIL' || true
  done
fi
if [[ $what == all || $what == sessions ]]; then
  echo "== sessions: ${CAMERAS:-625} cameras, 720p 25 fps 1.5 Mb/s CBR, one draining reader per camera"
  ./bin/sessions --cameras "${CAMERAS:-625}" --window "${WINDOW:-30s}" 2> >(grep -v 'level=INFO' >&2)
fi
if [[ $what == all || $what == record ]]; then
  echo "== record: the sessions run with every camera also recorded to fMP4 segments on disk"
  ./bin/sessions --cameras "${CAMERAS:-625}" --window "${WINDOW:-20s}" --record 2> >(grep -v 'level=INFO' >&2)
fi
if [[ $what == all || $what == decode ]]; then
  echo "== decode: camsim 720p clip, one thread, against the ffmpeg CLI in the same run"
  go test -run '^$' -bench . -benchtime 2x ./streams/decode/ | grep -E '^Benchmark'
fi
if [[ $what == all || $what == reconnect ]]; then
  echo "== reconnect: camera away 0.2–3 s, default backoff 1 s → 30 s"
  go test -run '^$' -bench Reconnect -benchtime 10x ./streams/rtsp/ | grep -E '^Benchmark'
fi
if [[ $what == all || $what == recognizers ]]; then
  echo "== recognizers: 720p camsim frames, one OpenCV thread (per core); overhead = face path / bare model calls - 1"
  go test -run '^$' -bench Recognizers -benchtime 3x ./pipeline/ | grep -E '^Benchmark'
fi
if [[ $what == all || $what == latency ]]; then
  echo "== latency: door cameras (faces only, 5 fps, every frame decoded), access unit arrival → identified event on the bus"
  ./bin/pipeline --cameras 1,10 --fps 5 --keyframes=false --faces-only --window "${WINDOW:-30s}"
fi
if [[ $what == all || $what == capacity ]]; then
  echo "== capacity: faces + plates at 1 analysed frame/s (key frames, GOP 1 s), motion gate on"
  ./bin/pipeline --cameras 16,24,32 --fps 1 --window "${WINDOW:-30s}"
fi
if [[ $what == all || $what == accuracy ]]; then
  echo "== accuracy: 16 camsim cameras for 60 s against the ground truth"
  E2E_CAMERAS=16 E2E_SECONDS=60 E2E_KEYFRAMES=1 E2E_WORKERS=2 go test -count=1 -run Camsim -v -timeout 10m ./pipeline/ | grep -E 'identity recall|PASS|FAIL'
fi
if [[ $what == all || $what == store ]]; then
  echo "== event store: ingest (bus → writer, Store.Insert, raw COPY reference) and queries over ${EVENTS:-10000000} events"
  ./bin/store --ingest 400000 --events "${EVENTS:-10000000}"
  ./bin/store --ingest 40000 --events 1000 --queries 1 --snapshots | head -1
fi
if [[ $what == all || $what == vectors ]]; then
  echo "== face search: top-10 over ${VECTORS:-1000000} and 16,000,000 synthetic embeddings (the site's 90,000 a day), exact / int8 / IVF, recall against exact; 256-d (intel-0095) against 128-d (dlib-v1) in the same run"
  ./bin/vectors --n "${VECTORS:-1000000}"
  ./bin/vectors --n "${VECTORS:-1000000}" --dim 128
  dir=${VECTORS_DIR:-$(mktemp -d /tmp/vigil-vectors-XXXX)}
  echo "== face search, 16,000,000 256-d vectors, every day but the last two sealed under $dir (19 GB of disk), then a restart from the snapshots in a fresh process"
  ./bin/vectors --n 16000000 --dir "$dir" --queries 20 && ./bin/vectors --n 16000000 --dir "$dir" --reopen
  [[ -n "${VECTORS_DIR:-}" ]] || rm -rf "$dir"
fi
if [[ $what == all || $what == search ]]; then
  echo "== plate search over ${PLATE_EVENTS:-10000000} plate events; face index rebuild from PostgreSQL"
  ./bin/search --plate-events "${PLATE_EVENTS:-10000000}" --faces "${FACES:-1000000}"
fi
if [[ $what == all || $what == doors ]]; then
  echo "== doors: card decisions through the signed unlock API (40,000 residents, 600 doors, every decision audited); face decisions against 40,000 enrolled faces through vigil serve"
  ./bin/doors
fi
if [[ $what == all || $what == import ]]; then
  echo "== import: the property office's CSV of ${RESIDENTS:-39000} residents (dry run with seeded mistakes, the import, the same file again), the engine's reload and a door's offline cache after it; a raw COPY of the same rows as the reference"
  ./bin/import --residents "${RESIDENTS:-39000}"
fi
if [[ $what == all || $what == unlock ]]; then
  echo "== auto-unlock: camsim door cameras → vigil serve → doorsim controllers' long polls"
  ./bin/unlock --cameras 4 --window "${WINDOW:-120s}" 2> >(grep -v 'level=WARN' >&2)
  echo "== auto-unlock on a mixed node: 2 door cameras + 4 street cameras on one face worker (overloaded), door priority on, then off"
  ./bin/unlock --cameras 2 --others 4 --face-workers 1 --compare --window "${WINDOW:-120s}" 2> >(grep -v 'level=WARN' >&2)
fi
if [[ $what == all || $what == live ]]; then
  echo "== live view: camsim → vigil serve (WHEP) → headless pion viewers in steps, 16 joining at a time, all sharing the CPUs; Chromium's offer → first frame, idle and under 300 viewers"
  [ -d web/test/node_modules/playwright-core ] || npm ci --prefix web/test --no-audit --no-fund >/dev/null
  ./bin/live --steps 100,200,300,400,500,600,700,800 --hold 10s --browser 30 --browser-at 300 2> >(awk '/msg="live view/ || !/level=|ice ERROR/' >&2)
  echo "== live view: vigil on one CPU, camsim and the viewers on the rest, viewers joining 25 a second"
  ./bin/live --node-cpus 0 --join-rate 25 --steps 400,500,600,700,800 --hold 10s 2> >(awk '/msg="live view/ || !/level=|ice ERROR/' >&2)
  echo "== live view: vigil on one CPU with sendmmsg batching on (live.batch_writes)"
  ./bin/live --node-cpus 0 --join-rate 25 --steps 400,500,600,700 --hold 10s --batch 2> >(awk '/msg="live view/ || !/level=|ice ERROR/' >&2)
fi
if [[ $what == all || $what == attack ]]; then
  echo "== attack: honest controllers' card decisions alone, then while another address sends forged, replayed and oversized requests, slow-loris connections, guessed tokens and a flood of WHEP offers"
  ./bin/attack --vigil bin/vigil
fi
