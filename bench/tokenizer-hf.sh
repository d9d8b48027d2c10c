#!/usr/bin/env bash
# tokenizer-hf.sh — encode throughput of ds-tokenize against Hugging Face tokenizers (encodeBatch,
# its multi-threaded batch API, all cores) and tiktoken (npm, WASM), on the same documents in one run.
#   bench/tokenizer-hf.sh [REPS]        (DS_BIN picks the build, default bin/)
# Documents: tinyshakespeare cut into 1 kB pieces, plus tests/vectors/tokenizer-corpus.jsonl (CJK,
# emoji, code, LaTeX) repeated to the same size. ds's time is its encode minus its tokenizer load
# (an empty input), the peers time only their encode calls. Best of REPS for each. The npm peers
# are installed into ~/.cache/ds-peers (DS_PEERS), as the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
DS_BIN="${DS_BIN:-$PWD/bin}"
REPS="${1:-3}"
REL=../shared/data/released-tokenizers
SHAKE=../shared/data/tinyshakespeare/input.txt
PEER_DIR="${DS_PEERS:-$HOME/.cache/ds-peers}/tokenizers-0.6.0"
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
[ -r "$SHAKE" ] && [ -r "$REL/qwen3/tokenizer.json" ] || { echo "missing shared data" >&2; exit 1; }
if [ ! -d "$PEER_DIR/node_modules/@anush008/tokenizers" ] || [ ! -d "$PEER_DIR/node_modules/tiktoken" ]; then
    mkdir -p "$PEER_DIR"
    npm install --prefix "$PEER_DIR" --no-audit --no-fund --silent @anush008/tokenizers@0.6.0 tiktoken@1 >&2
fi
export NODE_PATH="$PEER_DIR/node_modules"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$SHAKE" tests/vectors/tokenizer-corpus.jsonl > "$TMP/docs.jsonl" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
docs = [text[i:i + 1000] for i in range(0, len(text), 1000)]
mixed = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
size, target, k = 0, len(text.encode()), 0
while size < target:
    d = mixed[k % len(mixed)]; k += 1
    docs.append(d); size += len(d.encode())
for d in docs: print(json.dumps({"text": d}, ensure_ascii=False))
PY
BYTES=$(jq -j .text "$TMP/docs.jsonl" | wc -c)
DOCS=$(wc -l < "$TMP/docs.jsonl")
echo "documents: $DOCS, $BYTES bytes; $(nproc) cores; reps $REPS"
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'; }
best() { sort -g | head -1; }
printf '%-12s %-26s %10s %12s %8s\n' tokenizer encoder MB/s tokens "vs HF"
for m in deepseek_v3 qwen3; do
    tok="$REL/$m/tokenizer.json"
    load=$(for _ in $(seq "$REPS"); do secs "$DS_BIN/ds-tokenize" encode -t "$tok" --jsonl --jsonl-ids /dev/null; done | best)
    full=$(for _ in $(seq "$REPS"); do secs "$DS_BIN/ds-tokenize" encode -t "$tok" --jsonl --jsonl-ids "$TMP/docs.jsonl"; done | best)
    ntok=$("$DS_BIN/ds-tokenize" encode -t "$tok" --jsonl --jsonl-ids "$TMP/docs.jsonl" | jq length | awk '{s += $1} END {print s}')
    hf=$(for _ in $(seq "$REPS"); do node bench/tokenizer-peer.js bench "$tok" "$TMP/docs.jsonl" 1; done | jq -s 'min_by(.seconds)')
    hf_s=$(jq .seconds <<<"$hf"); hf_tok=$(jq .tokens <<<"$hf")
    ds_s=$(awk -v f="$full" -v l="$load" 'BEGIN {print f - l}')
    awk -v b="$BYTES" -v s="$hf_s" -v t="$hf_tok" -v m="$m" 'BEGIN {printf "%-12s %-26s %10.1f %12d %8s\n", m, "HF encodeBatch (all cores)", b / s / 1e6, t, "1.00"}'
    awk -v b="$BYTES" -v s="$ds_s" -v t="$ntok" -v h="$hf_s" -v m="$m" -v l="$load" 'BEGIN {printf "%-12s %-26s %10.1f %12d %8.2f   (load %.2f s not counted)\n", m, "ds-tokenize (1 thread)", b / s / 1e6, t, h / s, l}'
    [ "$ntok" = "$hf_tok" ] || echo "  token counts differ: ds $ntok, HF $hf_tok"
    [ "$m" = qwen3 ] && for enc in cl100k_base o200k_base; do
        tk=$(for _ in $(seq "$REPS"); do node bench/tokenizer-peer.js bench "tiktoken:$enc" "$TMP/docs.jsonl" 1; done | jq -s 'min_by(.seconds)')
        awk -v b="$BYTES" -v s="$(jq .seconds <<<"$tk")" -v t="$(jq .tokens <<<"$tk")" -v h="$hf_s" -v e="$enc" 'BEGIN {printf "%-12s %-26s %10.1f %12d %8.2f\n", e, "tiktoken (wasm, 1 thread)", b / s / 1e6, t, h / s}'
    done
done
