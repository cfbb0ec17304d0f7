#!/usr/bin/env bash
# Sets up what is missing, builds vigil, and runs the demo on embedded defaults: a simulated
# camera fleet and a vigil node pulling it. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
go build -o bin/ ./cmd/...
exec ./bin/vigil demo "$@"
