#!/usr/bin/env bash
# Fetches ONNX Runtime's C library (Linux x86-64) from npm's onnxruntime-node package, checks
# its sha256, and puts it where vigil looks by default:
#   ${XDG_CACHE_HOME:-~/.cache}/vigil/onnxruntime-1.30.0/libonnxruntime.so.1
# With it, vigil runs the face detector, the face embedder and the plate models on ONNX Runtime
# (2.3–2.9×, about 1× and 3.4× faster than OpenCV 4.6 on one core: BenchmarkRuntimes in
# recognizers/dnn); without it, on OpenCV as before.
# Licence: MIT (Microsoft). Safe to run again.
set -euo pipefail
version=1.30.0
tgz_sha=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
lib_sha=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
dest="${XDG_CACHE_HOME:-$HOME/.cache}/vigil/onnxruntime-$version"
lib="$dest/libonnxruntime.so.1"
if [ -f "$lib" ] && echo "$lib_sha  $lib" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "fetch-onnxruntime: only x86-64 Linux is verified here (this is $(uname -m)); vigil runs on OpenCV" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-onnxruntime: npm pack onnxruntime-node@$version (45 MB)"
(cd "$tmp" && npm pack "onnxruntime-node@$version" --silent >/dev/null)
tgz="$tmp/onnxruntime-node-$version.tgz"
echo "$tgz_sha  $tgz" | sha256sum -c --quiet - || { echo "fetch-onnxruntime: the package's sha256 differs from the verified one" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
echo "$lib_sha  $tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --quiet -
mkdir -p "$dest"
install -m 0644 "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.part"
mv "$lib.part" "$lib"
echo "fetch-onnxruntime: $lib"
