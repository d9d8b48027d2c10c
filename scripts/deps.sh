#!/bin/sh
# Installs the Debian packages ds needs when run as root; otherwise prints the command to run.
set -eu
# clang and libclang-rt-14-dev (libFuzzer for clang 14, Debian 12): make fuzz
PKGS="build-essential jq libopenblas-dev libjansson-dev libarchive-dev libpcre2-dev libutf8proc-dev libssl-dev libmicrohttpd-dev parallel bats bats-assert bats-support gnuplot-nox sentencepiece clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends $missing >&2
else
    echo "deps: missing packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
