#!/usr/bin/env bash
# serve.sh — `ds-infer serve` under load from a second process on loopback: CONC concurrent
# streams send REQUESTS requests (whole and streamed completions and chat, one in five a bad
# request: malformed JSON, unsupported fields, a too-long prompt, a body over 1 MiB, wrong methods
# and paths) through tests/peers/serve_load.py (python3's standard library). Every greedy answer
# must equal `ds-infer generate --temperature 0` on the same prompt, every bad one a 4xx with a JSON
# error, the server must answer /health afterwards and exit 0 on SIGTERM; under a sanitizer build
# its stderr must hold no sanitizer report. Prints the client's summary (completion tokens/s,
# latency percentiles) and the server's own counters, then a line "serve.sh: ok".
#
# Usage: bench/serve.sh
#   BIN=DIR picks the build (default bin; bin-asan for `make SANITIZE=1`), REQUESTS (default 400),
#   CONC (default 16), MAXTOK (default 32 tokens per answer), BATCH (default 16 engine slots),
#   THREADS (default 2); the model: CONFIG (default recipes/tinyzero-model.json, a 6-layer
#   deepseek_v3 MoE) trained STEPS (default 100) steps on tiny-shakespeare with a BPE tokenizer of
#   the config's vocabulary size.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-bin}" requests="${REQUESTS:-400}" conc="${CONC:-16}" maxtok="${MAXTOK:-32}"
batch="${BATCH:-16}" threads="${THREADS:-2}" steps="${STEPS:-100}"
config="${CONFIG:-recipes/tinyzero-model.json}"
data="${DS_DATA:-../shared/data}/tinyshakespeare/input.txt"
[ -f "$data" ] || { echo "serve.sh: missing $data" >&2; exit 1; }
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:exitcode=86}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=86}"
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$tmp"' EXIT

head -c 300000 "$data" > "$tmp/train.txt"
"$bin/ds-tokenize" train --vocab-size "$(jq .vocab_size "$config")" --special '<|endoftext|>' -o "$tmp/tok.json" "$tmp/train.txt"
"$bin/ds-tokenize" encode -t "$tmp/tok.json" -o "$tmp/train" "$tmp/train.txt"
"$bin/ds-pretrain" train --config "$config" --data "$tmp/train-000000.tar" --tokenizer "$tmp/tok.json" \
    --seq-len 64 --batch 8 --steps "$steps" --lr 3e-3 --eval-every 0 --threads "$threads" --peak-gflops 10 \
    -o "$tmp/m.tar" --metrics "$tmp/train.jsonl"
echo "model: $config, $steps steps, final loss $(tail -1 "$tmp/train.jsonl" | jq .loss)"

# 24 prompts (lines of the corpus), as completions and as a chat's user turn; the expected answers
# are ds-infer generate's greedy samples
for i in $(seq 1 24); do
    printf '{"id":"p%d","prompt":"%s"}\n' "$i" "$(grep -v '^$' "$tmp/train.txt" | sed -n "$((i * 7))p" | tr -d '"\\')"
done > "$tmp/prompts.jsonl"
jq -c '{id: .id, messages: [{role: "user", content: .prompt}]}' "$tmp/prompts.jsonl" > "$tmp/chats.jsonl"
gen=("$bin/ds-infer" generate -m "$tmp/m.tar" --temperature 0 --max-tokens "$maxtok" --ordered --threads "$threads")
"${gen[@]}" "$tmp/prompts.jsonl" > "$tmp/gen.jsonl"
"${gen[@]}" "$tmp/chats.jsonl" > "$tmp/chat.jsonl"
jq -s -c --argjson mt "$maxtok" '(.[0:24]) as $p | (.[24:48]) as $g | (.[48:72]) as $c | range(0; 24) |
    {prompt: $p[.].prompt, completion: $g[.].completion, n_tokens: $g[.].n_tokens,
     chat_completion: $c[.].completion, chat_n_tokens: $c[.].n_tokens, max_tokens: $mt}' \
    "$tmp/prompts.jsonl" "$tmp/gen.jsonl" "$tmp/chat.jsonl" > "$tmp/expected.jsonl"

"$bin/ds-infer" serve -m "$tmp/m.tar" --port 0 --port-file "$tmp/port" --threads "$threads" \
    --max-tokens "$maxtok" --batch "$batch" 2> "$tmp/serve.err" &
pid=$!
for _ in $(seq 1 600); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { cat "$tmp/serve.err" >&2; echo "serve.sh: the server did not start" >&2; exit 1; }
st=0
python3 tests/peers/serve_load.py "$(cat "$tmp/port")" "$tmp/expected.jsonl" "$requests" "$conc" > "$tmp/load.json" || st=$?
kill -TERM "$pid"
served=0
wait "$pid" || served=$?
pid=
echo "client: $(cat "$tmp/load.json")"
echo "server: $(tail -1 "$tmp/serve.err")"
echo "server exit status: $served"
fail=0
[ "$st" -eq 0 ] || { echo "serve.sh: the load client found wrong answers (status $st)" >&2; fail=1; }
[ "$served" -eq 0 ] || { echo "serve.sh: the server exited with status $served" >&2; fail=1; }
if grep -q 'Sanitizer\|runtime error:' "$tmp/serve.err"; then
    grep -A20 'Sanitizer\|runtime error:' "$tmp/serve.err" >&2
    echo "serve.sh: sanitizer report" >&2
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "serve.sh: ok ($bin, $requests requests, $conc streams, $maxtok tokens per answer)"
