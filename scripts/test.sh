#!/usr/bin/env bash
# Runs every check and test vigil has: formatting, vet, staticcheck, build, and the full test
# suite with the race detector against real parts (RTSP servers, ffmpeg, libavcodec, the models,
# PostgreSQL, S3, MQTT, Chromium). Every test's result goes to test-artifacts/test.json (go test
# -json); the last line is the count: "N passed, N failed, N skipped". Under CI=true a test that
# skips for want of a dependency fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PATH:$(go env GOPATH)/bin"

echo "== gofmt"
bad=$(gofmt -l $(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "not gofmt-ed: $bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== go build"
go build -o bin/ ./cmd/... ./scripts/testsum

mkdir -p test-artifacts
LOG=test-artifacts/test.json
: > "$LOG"
status=0
# gotest runs go test -json with the given arguments, keeps its events in $LOG and shows each
# package's result and every failed test's output.
gotest() {
  go test -json "$@" 2>&1 | tee -a "$LOG" | ./bin/testsum || status=1
}

echo "== go test -race (fault tests hold their outages for FAULT_SECONDS, default the issue's 60 s)"
export FAULT_SECONDS="${FAULT_SECONDS:-60}"
# The pipeline's camsim accuracy test recognises live video in real time: it runs alone, after the
# rest, so other packages' tests do not take its CPU and turn its accuracy check into a load test.
gotest -race -count=1 -timeout 20m $(go list ./... | grep -v -e '/pipeline$' -e '/docker$')
gotest -race -count=1 -timeout 10m ./pipeline/
echo "== docker/: the image built with podman and the 3-node compose site run (alone: it is heavy)"
gotest -count=1 -timeout 30m ./docker/
echo "== goface backend (build tag goface, dlib)"
go vet -tags goface ./recognizers/goface/
gotest -count=1 -tags goface ./recognizers/goface/
echo "== Mat leak check (gocv matprofile)"
gotest -count=1 -tags matprofile -run 'NoMatLeaks' ./streams/decode/
gotest -count=1 -tags matprofile -run 'Overload' ./pipeline/
# Short fuzz runs of every fuzz target, seeded from the table cases. A failure must reproduce
# from the input the fuzzer saved (every target is deterministic per input); a worker the fuzzer
# reports as hung at the very end of its time, whose saved input passes, is reported, not failed.
fuzz() {
  local target=$1 pkg=$2
  if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime 10s "$pkg"; then
    echo "fuzz: $target failed; re-running its corpus, including the saved input"
    gotest -count=1 -run "^${target}\$" "$pkg"
    echo "fuzz: WARNING: $target's worker ended abnormally but no saved input reproduces it"
  fi
}
echo "== fuzz (10 s each)"
fuzz FuzzDepacketizer ./streams/
fuzz FuzzDecode ./streams/decode/
fuzz FuzzUnpack ./internal/core/event/

echo "== summary (every test event in $LOG)"
./bin/testsum -summary "$LOG" || status=1
exit $status
