#!/usr/bin/env bash
# rs-filter.sh PROBLEMS SAMPLES [SCRIPT] — R1's filter on rejection-sampled data: keep the samples
# (ds-distill sample records) whose reasoning is all in one language, SCRIPT's (default latin).
# Writes the kept records to stdout, unchanged and in order.
set -euo pipefail
bin=${DS_BIN:-$(dirname "$0")/../bin}
"$bin/ds-eval" --task lang --lang-script "${3:-latin}" --problems "$1" "$2" \
  | jq -c 'select(.correct) | "\(.id)/\(.sample)"' \
  | jq -c --slurpfile all "$2" -n '[inputs] as $k | ($k | map({key: ., value: 1}) | from_entries) as $ok
        | $all[] | select($ok["\(.id)/\(.sample)"])'
