#!/usr/bin/env bash
# fsync.sh — the cost of the atomic writer's file and folder fsync: many small outputs (manifests,
# metrics, records) and a few large ones (shards, checkpoints), each written through
# atomic_open/atomic_commit and as a plain temp + rename without fsync.
#   bench/fsync.sh [DIR]   (DIR: the filesystem to measure, default a temp folder under out/)
set -euo pipefail
cd "$(dirname "$0")/.."
DS_BIN="${DS_BIN:-$PWD/bin}"
DIR="${1:-}"
if [ -z "$DIR" ]; then
    mkdir -p out
    DIR=$(mktemp -d out/fsync.XXXXXX)
    trap 'rm -rf "$DIR"' EXIT
fi
df -hT "$DIR" | tail -n 1
"$DS_BIN/bench/fsync_cost" --dir "$DIR" --count 500 --size 4096
"$DS_BIN/bench/fsync_cost" --dir "$DIR" --count 200 --size 65536
"$DS_BIN/bench/fsync_cost" --dir "$DIR" --count 4 --size 67108864
