#!/usr/bin/env bash
# Installs what vigil needs to build, run the demo and run the tests, idempotently:
# Debian packages (ffmpeg and libav* for camera encode/decode, OpenCV for frames, PostgreSQL),
# Go tools, and a running PostgreSQL. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=(ffmpeg pkg-config gcc g++ libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libopencv-dev libdlib-dev libdlib-data libatlas-base-dev libjpeg62-turbo-dev postgresql mosquitto chromium
  fonts-wqy-zenhei # the console's screenshots show Chinese names, plates and units (Chromium has no CJK font of its own)
  nats-server
  # docker/: the image is built and the 3-node site run with podman (runc: crun fails here)
  # (netavark runs iptables to set up the bridge network: without it every container fails to start)
  podman runc mmdebstrap podman-compose netavark aardvark-dns catatonit uidmap slirp4netns fuse-overlayfs iptables)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm) # any node with npm will do
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="$PATH:$(go env GOPATH)/bin"
if ! command -v staticcheck >/dev/null 2>&1; then
  echo "setup: installing staticcheck"
  go install honnef.co/go/tools/cmd/staticcheck@v0.6.1
fi

if ! command -v versitygw >/dev/null 2>&1; then
  echo "setup: installing versitygw (S3 server for the tests; takes a few minutes the first time)"
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi

# PostgreSQL: the machine's own cluster on 127.0.0.1:5432 when there is one; start it if down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "setup: starting PostgreSQL"
    v=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  fi
fi

# The console's browser tests: playwright-core drives Debian's chromium (no browser download).
if [ ! -d web/test/node_modules/playwright-core ]; then
  echo "setup: installing the console test driver (npm ci in web/test)"
  npm ci --prefix web/test --no-audit --no-fund >/dev/null
fi

# ONNX Runtime's C library for the face models (vigil falls back to OpenCV without it).
./scripts/fetch-onnxruntime.sh

go mod download
echo "setup: ok"
