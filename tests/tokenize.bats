#!/usr/bin/env bats
# ds-tokenize and the byte-level BPE library: reference training, GPT-2 ids, round trips, shards,
# parallel encoding, errors.
load helpers

TOKDATA="$DATA/tokenizer"

setup() {
    TMP="$BATS_TEST_TMPDIR"
}

# gpt2 TOKENIZER: imports GPT-2's files once per test file.
gpt2() {
    needs_data tokenizer/gpt2_vocab.json
    local out="$BATS_FILE_TMPDIR/gpt2.json"
    [ -e "$out" ] || ds-tokenize import-gpt2 "$TOKDATA/gpt2_vocab.json" "$TOKDATA/gpt2_merges.txt" -o "$out"
    echo "$out"
}

# ---- C unit cases ---------------------------------------------------------------------------
@test "utf-8 validation matches what PCRE2 accepts" { unit tokenizer utf8_validation; }
@test "Split behaviors (with invert), Digits, Punctuation, Whitespace(Split), ByteLevel prefix space" { unit tokenizer split_behaviors; }
@test "pre-tokenizers: gpt2, gpt4, digits splits; pieces always concatenate to the input" { unit tokenizer pretok_splits; }
@test "byte-level alphabet encodes and decodes all 256 bytes" { unit tokenizer bytelevel_alphabet; }
@test "minbpe vector through the library: [258, 100, 258, 97, 99]" { unit tokenizer minbpe_vector; }
@test "heap merge loop equals GPT-2's plain loop, cached and uncached" { unit tokenizer encode_matches_reference; }
@test "decode(encode(x)) == x for random bytes with NULs, invalid UTF-8, 200k spaces" { unit tokenizer roundtrip_any_bytes; }
@test "special tokens: allow_special maps them, otherwise plain text; tok_token_id" { unit tokenizer special_tokens; }
@test "tokenizer.json round trip; merges as pairs and Split sequences load" { unit tokenizer json_roundtrip; }
@test "a Sequence of several Split regexes (DeepSeek V3's shape) loads, splits and round-trips" { unit tokenizer split_sequence; }
@test "tokenizer.json errors name the file, line and what is unsupported" { unit tokenizer json_errors; }
@test "training ties go to the lexicographically greater pair" { unit tokenizer train_ties; }
@test "incremental training equals a full recount after every merge" { unit tokenizer train_matches_reference; }
@test "concurrent tok_encode on one tokenizer equals the serial result" { unit tokenizer concurrent_encode; }

# ---- reference training -------------------------------------------------------------------------
@test "train reproduces train-bpe-reference merges byte for byte and the vocab ids" {
    needs_data tokenizer/corpus.en
    ds-tokenize train --vocab-size 500 --special '<|endoftext|>' -o "$TMP/ref.json" "$TOKDATA/corpus.en"
    jq -r '.model.merges[]' "$TMP/ref.json" > "$TMP/merges.txt"
    run cmp "$TMP/merges.txt" "$TOKDATA/train-bpe-reference-merges.txt"
    assert_success
    jq -S '.model.vocab' "$TMP/ref.json" > "$TMP/v1"
    jq -S . "$TOKDATA/train-bpe-reference-vocab.json" > "$TMP/v2"
    run cmp "$TMP/v1" "$TMP/v2"
    assert_success
    [ "$(jq -c '.added_tokens[0] | [.id, .content, .special]' "$TMP/ref.json")" = '[0,"<|endoftext|>",true]' ]
}

@test "train from JSONL --field equals train from the same text file" {
    needs_data tokenizer/corpus.en
    jq -Rsc '{text: .}' "$TOKDATA/corpus.en" > "$TMP/c.jsonl"
    ds-tokenize train --vocab-size 400 --special '<|endoftext|>' -o "$TMP/a.json" "$TOKDATA/corpus.en"
    ds-tokenize train --vocab-size 400 --special '<|endoftext|>' --field text -o "$TMP/b.json" "$TMP/c.jsonl"
    cmp "$TMP/a.json" "$TMP/b.json"
}

@test "minbpe vector through the tool: train 3 merges on aaabdaaabac, encode" {
    printf 'aaabdaaabac' > "$TMP/in.txt"
    ds-tokenize train --vocab-size 259 --raw-byte-ids -o "$TMP/m.json" "$TMP/in.txt"
    run bash -c "printf 'aaabdaaabac' | ds-tokenize encode -t '$TMP/m.json' --jsonl-ids"
    assert_success
    assert_output "[258,100,258,97,99]"
}

@test "gpt4 and digits pre-tokenizers: digit groups of 3 and single digits" {
    needs_data tokenizer/corpus.en
    ds-tokenize train --vocab-size 600 --pretokenizer gpt4 -o "$TMP/g4.json" "$TOKDATA/corpus.en"
    ds-tokenize train --vocab-size 600 --pretokenizer digits -o "$TMP/dg.json" "$TOKDATA/corpus.en"
    [ "$(jq -r '.pre_tokenizer.pretokenizers[0].type' "$TMP/dg.json")" = Split ]
    # 1234567 has no merges across pre-token boundaries: digits keeps 7 tokens, gpt4 at least 3
    run bash -c "printf '1234567' | ds-tokenize encode -t '$TMP/dg.json' --jsonl-ids | jq length"
    assert_output 7
    run bash -c "printf '1234567' | ds-tokenize encode -t '$TMP/g4.json' --jsonl-ids | jq length"
    [ "$output" -ge 3 ] && [ "$output" -le 7 ]
    run ds-tokenize train --vocab-size 600 --pretokenizer bogus -o "$TMP/x.json" "$TOKDATA/corpus.en"
    assert_failure 2
}

# ---- GPT-2 ------------------------------------------------------------------------------------
@test "import-gpt2: all 26 GPT-2 cases encode to their ids" {
    needs_data tokenizer/gpt2_cases.jsonl
    local tok; tok=$(gpt2)
    jq -c 'select(.allow_endoftext | not)' "$TOKDATA/gpt2_cases.jsonl" > "$TMP/plain.jsonl"
    jq -c 'select(.allow_endoftext)' "$TOKDATA/gpt2_cases.jsonl" > "$TMP/special.jsonl"
    [ "$(cat "$TMP/plain.jsonl" "$TMP/special.jsonl" | wc -l)" -eq 26 ]
    ds-tokenize encode -t "$tok" --jsonl --field text --jsonl-ids "$TMP/plain.jsonl" > "$TMP/got1"
    ds-tokenize encode -t "$tok" --jsonl --field text --jsonl-ids --allow-special "$TMP/special.jsonl" > "$TMP/got2"
    cat "$TMP/got1" "$TMP/got2" > "$TMP/got"
    cat "$TMP/plain.jsonl" "$TMP/special.jsonl" | jq -c .ids > "$TMP/want"
    run diff "$TMP/got" "$TMP/want"
    assert_success
}

@test "import-gpt2: stdin is one document; <|endoftext|> matches unless --no-special" {
    local tok; tok=$(gpt2)
    run bash -c "printf 'hello <|endoftext|>' | ds-tokenize encode -t '$tok' --jsonl-ids"
    assert_output "[31373,220,50256]"
    run bash -c "printf 'hello <|endoftext|>' | ds-tokenize encode -t '$tok' --jsonl-ids --allow-special"
    assert_output "[31373,220,50256]"
    run bash -c "printf 'hello <|endoftext|>' | ds-tokenize encode -t '$tok' --jsonl-ids --no-special"
    assert_success
    refute_output --partial 50256
    run bash -c "printf 'hello world' | ds-tokenize encode -t '$tok' --jsonl-ids --bos 50256 --eos '<|endoftext|>'"
    assert_output "[50256,31373,995,50256]"
    run bash -c "printf 'x' | ds-tokenize encode -t '$tok' --jsonl-ids --eos '<|nope|>'"
    assert_failure 2
    # decode --newline: one line per document
    run bash -c "printf '[31373]\n[995]\n' | ds-tokenize decode -t '$tok' --newline"
    assert_output "$(printf 'hello\n world')"
}

@test "tokenizer.json written by ds loads back to the same bytes" {
    local tok; tok=$(gpt2)
    # train's output, re-read and re-written through a Hugging Face style pair-merges file
    jq '.model.merges |= map(split(" "))' "$tok" > "$TMP/pairs.json"
    run bash -c "printf 'hello world' | ds-tokenize encode -t '$TMP/pairs.json' --jsonl-ids"
    assert_output "[31373,995]"
}

@test "Hugging Face tokenizers.js loads ds's tokenizer.json files and gives the same ids" {
    # optional cross-check: npm install --prefix DIR @huggingface/tokenizers; DS_TOKENIZERS_JS=DIR
    [ -n "${DS_TOKENIZERS_JS:-}" ] && [ -d "$DS_TOKENIZERS_JS/node_modules/@huggingface/tokenizers" ] ||
        skip "set DS_TOKENIZERS_JS to a folder with node_modules/@huggingface/tokenizers"
    needs_data tokenizer/corpus.en
    local tok; tok=$(gpt2)
    ds-tokenize train --vocab-size 700 --special '<|endoftext|>' --pretokenizer gpt4 -o "$TMP/g4.json" "$TOKDATA/corpus.en"
    ds-tokenize train --vocab-size 700 --pretokenizer digits -o "$TMP/dg.json" "$TOKDATA/corpus.en"
    cat "$TOKDATA/tinystories_sample.txt" "$TOKDATA/german.txt" "$TOKDATA/address.txt" > "$TMP/text"
    printf '1234567 x  \t\r\n\xc2\xa0 \xe2\x80\x83y \xf0\x9f\x91\x8b it'"'"'S 3.14' >> "$TMP/text"
    for t in "$tok" "$TMP/g4.json" "$TMP/dg.json"; do
        node -e '
            const { Tokenizer } = require(process.env.DS_TOKENIZERS_JS + "/node_modules/@huggingface/tokenizers");
            const fs = require("fs");
            const tok = new Tokenizer(JSON.parse(fs.readFileSync(process.argv[1], "utf8")), {});
            const ids = tok.encode(fs.readFileSync(process.argv[2], "utf8"), { add_special_tokens: false }).ids;
            console.log(JSON.stringify(ids));' "$t" "$TMP/text" > "$TMP/js"
        ds-tokenize encode -t "$t" --jsonl-ids --allow-special "$TMP/text" > "$TMP/ds"
        cmp "$TMP/js" "$TMP/ds"
    done
}

# ---- round trips ----------------------------------------------------------------------------
@test "decode(encode(x)) == x for every file in the tokenizer data" {
    local tok; tok=$(gpt2)
    local files=("$TOKDATA"/*)
    [ "${#files[@]}" -ge 10 ]
    # one document per file, one line of ids each; decoded together back to their concatenation
    ds-tokenize encode -t "$tok" --jsonl-ids "${files[@]}" > "$TMP/ids"
    [ "$(wc -l < "$TMP/ids")" -eq "${#files[@]}" ]
    ds-tokenize decode -t "$tok" "$TMP/ids" > "$TMP/all"
    cat "${files[@]}" | cmp - "$TMP/all"
    # each line alone back to its file (with a small tokenizer trained here: cheap to load)
    ds-tokenize train --vocab-size 300 --special '<|endoftext|>' -o "$TMP/small.json" "$TOKDATA/german.txt"
    ds-tokenize encode -t "$TMP/small.json" --jsonl-ids "${files[@]}" > "$TMP/ids2"
    local i=0
    for f in "${files[@]}"; do
        i=$((i + 1))
        sed -n "${i}p" "$TMP/ids2" | ds-tokenize decode -t "$TMP/small.json" > "$TMP/out"
        cmp "$f" "$TMP/out"
    done
}

@test "decode(encode(x)) == x for random bytes (NULs, invalid UTF-8) via files and stdin" {
    local tok; tok=$(gpt2)
    ds-tokenize train --vocab-size 300 -o "$TMP/small.json" "$TOKDATA/german.txt"
    head -c 60000 /dev/urandom > "$TMP/rand"
    printf '\xff\xfe\xc3(\xed\xa0\x80 \xf0\x9f\x91' >> "$TMP/rand"
    for t in "$tok" "$TMP/small.json"; do
        ds-tokenize encode -t "$t" --jsonl-ids "$TMP/rand" | ds-tokenize decode -t "$t" > "$TMP/out"
        cmp "$TMP/rand" "$TMP/out"
        ds-tokenize encode -t "$t" --jsonl-ids < "$TMP/rand" | ds-tokenize decode -t "$t" - > "$TMP/out"
        cmp "$TMP/rand" "$TMP/out"
    done
}

# ---- shards, parallel -------------------------------------------------------------------------
@test "encode to shards: u16, tokenizer hash recorded, inspect, decode --shard range" {
    needs_data tokenizer/tinystories_sample.txt
    local tok; tok=$(gpt2)
    jq -Rc '{text: .}' "$TOKDATA/tinystories_sample.txt" > "$TMP/docs.jsonl"
    ds-tokenize encode -t "$tok" --jsonl --eos '<|endoftext|>' -o "$TMP/sh" --shard-tokens 200 "$TMP/docs.jsonl"
    [ -e "$TMP/sh-000000.tar" ] && [ -e "$TMP/sh-000001.tar" ]
    run ds-tokenize inspect --json "$TMP/sh-000000.tar"
    assert_success
    local hash; hash=$(sha256sum "$tok" | cut -c1-64)
    assert_output --partial "$hash"
    assert_output --partial '"dtype":"u16"'
    # the whole dataset decodes back to the documents, each followed by <|endoftext|>
    ds-tokenize decode -t "$tok" --shard "$TMP/sh-*.tar" > "$TMP/all.txt"
    jq -j '.text + "<|endoftext|>"' "$TMP/docs.jsonl" > "$TMP/want.txt"
    cmp "$TMP/all.txt" "$TMP/want.txt"
    # a range across documents and shards: tokens [150, 290)
    ds-tokenize decode -t "$tok" --shard "$TMP/sh-*.tar" --start 150 --count 140 > "$TMP/range.txt"
    ds-tokenize encode -t "$tok" --jsonl --eos '<|endoftext|>' --jsonl-ids "$TMP/docs.jsonl" |
        jq -sc 'add | .[150:290]' | ds-tokenize decode -t "$tok" > "$TMP/want-range.txt"
    [ -s "$TMP/range.txt" ]
    cmp "$TMP/range.txt" "$TMP/want-range.txt"
    run ds-tokenize decode -t "$tok" --shard "$TMP/sh-000000.tar" --start 999999 --count 1
    assert_failure 1
    # a damaged shard: inspect fails naming it
    head -c 1536 "$TMP/sh-000001.tar" > "$TMP/cut-000000.tar"
    run ds-tokenize inspect "$TMP/sh-000000.tar" "$TMP/cut-000000.tar"
    assert_failure 1
    assert_output --partial "cut-000000.tar"
}

@test "parallel --pipe encode equals one process: ids and shards" {
    needs_data tokenizer/corpus.en
    local tok; tok=$(gpt2)
    jq -Rc '{text: .}' "$TOKDATA/corpus.en" > "$TMP/docs.jsonl"
    [ "$(wc -l < "$TMP/docs.jsonl")" -gt 1000 ]
    ds-tokenize encode -t "$tok" --jsonl --jsonl-ids "$TMP/docs.jsonl" > "$TMP/one.ids"
    parallel -j2 --pipe -k -N300 ds-tokenize encode -t "$tok" --jsonl --jsonl-ids < "$TMP/docs.jsonl" > "$TMP/par.ids"
    cmp "$TMP/one.ids" "$TMP/par.ids"
    # shards: single process vs parallel ids packed by `ds-tokenize shard`
    ds-tokenize encode -t "$tok" --jsonl --eos "<|endoftext|>" --source corpus -o "$TMP/one" --shard-tokens 5000 "$TMP/docs.jsonl"
    parallel -j2 --pipe -k -N300 -q ds-tokenize encode -t "$tok" --jsonl --jsonl-ids --eos "<|endoftext|>" < "$TMP/docs.jsonl" |
        ds-tokenize shard -t "$tok" --source corpus -o "$TMP/par" --shard-tokens 5000
    local n=0
    for f in "$TMP"/one-*.tar; do
        cmp "$f" "$TMP/par-${f##*/one-}"
        n=$((n + 1))
    done
    [ "$n" -gt 1 ] && [ "$(ls "$TMP"/par-*.tar | wc -l)" -eq "$n" ]
}

# ---- errors -----------------------------------------------------------------------------------
@test "malformed JSONL line: exit 1, file:line, no shard left behind" {
    local tok; tok=$(gpt2)
    { for i in $(seq 1 50); do echo "{\"text\": \"document $i\"}"; done; echo '{"text": oops'; echo '{"text": "x"}'; } > "$TMP/bad.jsonl"
    run ds-tokenize encode -t "$tok" --jsonl -o "$TMP/out" --shard-tokens 20 "$TMP/bad.jsonl"
    assert_failure 1
    assert_output --partial "ds-tokenize: $TMP/bad.jsonl:51:"
    run ls "$TMP"
    refute_output --partial out-
    run ds-tokenize encode -t "$tok" --jsonl --jsonl-ids -o "$TMP/ids.jsonl" "$TMP/bad.jsonl"
    assert_failure 1
    [ ! -e "$TMP/ids.jsonl" ]
    echo '{"body": "no text field"}' > "$TMP/nofield.jsonl"
    run ds-tokenize encode -t "$tok" --jsonl --jsonl-ids "$TMP/nofield.jsonl"
    assert_failure 1
    assert_output --partial "nofield.jsonl:1: field 'text' is missing"
    run ds-tokenize train --vocab-size 300 --field text -o "$TMP/t.json" "$TMP/bad.jsonl"
    assert_failure 1
    assert_output --partial "bad.jsonl:51:"
    [ ! -e "$TMP/t.json" ]
}

@test "decode: a bad id line names file:line; no output file on failure" {
    local tok; tok=$(gpt2)
    printf '[1,2]\n[3, 99999999]\n' > "$TMP/ids"
    run ds-tokenize decode -t "$tok" -o "$TMP/out.txt" "$TMP/ids"
    assert_failure 1
    assert_output --partial "$TMP/ids:2: item 2 is not a token id"
    [ ! -e "$TMP/out.txt" ]
    printf '{"a": 1}\n' > "$TMP/obj"
    run ds-tokenize decode -t "$tok" "$TMP/obj"
    assert_failure 1
    assert_output --partial "obj:1: expected a JSON array"
}

@test "bad tokenizer files fail with exit 1 and the file name" {
    echo '{"model": {"type": "Unigram"}}' > "$TMP/uni.json"
    run bash -c "printf x | ds-tokenize encode -t '$TMP/uni.json' --jsonl-ids"
    assert_failure 1
    assert_output --partial "uni.json: model type \"Unigram\" is not supported"
    run ds-tokenize import-gpt2 "$TMP/missing.json" "$TMP/missing.txt" -o "$TMP/o.json"
    assert_failure 1
    [ ! -e "$TMP/o.json" ]
}

@test "--help, --version and usage errors" {
    run ds-tokenize --help
    assert_success
    assert_output --partial "Usage: ds-tokenize"
    run ds-tokenize --version
    assert_success
    assert_output --partial "ds-tokenize (ds)"
    for cmd in train import-gpt2 encode decode shard inspect; do
        run ds-tokenize "$cmd" --help
        assert_success
        run ds-tokenize "$cmd" --version
        assert_success
    done
    run ds-tokenize
    assert_failure 2
    run ds-tokenize frobnicate
    assert_failure 2
    run ds-tokenize train -o "$TMP/x.json"
    assert_failure 2
    assert_output --partial "--vocab-size"
    run ds-tokenize train --vocab-size abc -o "$TMP/x.json"
    assert_failure 2
    run ds-tokenize encode --jsonl-ids
    assert_failure 2
    run ds-tokenize import-gpt2 a.json -o "$TMP/x.json"
    assert_failure 2
    run ds-tokenize decode --bogus
    assert_failure 2
    run ds-tokenize inspect --vocab-size 3 x.tar
    assert_failure 2
}

# ---- released tokenizers (DeepSeek V3, Qwen3) ---------------------------------------------------
REL="$DATA/released-tokenizers"
VEC="$BATS_TEST_DIRNAME/vectors"

@test "released tokenizers: DeepSeek V3 and Qwen3 give the committed Hugging Face ids" {
    needs_data released-tokenizers/qwen3/tokenizer.json
    for m in deepseek_v3 qwen3; do
        ds-tokenize encode -t "$REL/$m/tokenizer.json" --jsonl --jsonl-ids "$VEC/tokenizer-corpus.jsonl" > "$TMP/$m.ids"
        run diff "$TMP/$m.ids" "$VEC/$m.ids.jsonl"
        assert_success
    done
}

@test "released tokenizers: decode(encode(x)) is x (Qwen3: x in NFC)" {
    needs_data released-tokenizers/qwen3/tokenizer.json
    command -v python3 >/dev/null || skip "python3 is not installed"
    for m in deepseek_v3 qwen3; do
        ds-tokenize decode -t "$REL/$m/tokenizer.json" "$VEC/$m.ids.jsonl" > "$TMP/got"
        M=$m python3 -c '
import json, os, sys, unicodedata
for line in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(line)["text"]
    if os.environ["M"] == "qwen3": t = unicodedata.normalize("NFC", t)
    sys.stdout.buffer.write(t.encode())' "$VEC/tokenizer-corpus.jsonl" > "$TMP/want"
        run cmp "$TMP/got" "$TMP/want"
        assert_success
    done
}

@test "released tokenizers: special tokens match by default; --no-special encodes them as text" {
    needs_data released-tokenizers/deepseek_v3/tokenizer.json
    local tok="$REL/deepseek_v3/tokenizer.json"
    run bash -c "printf '<｜User｜>hi<｜end▁of▁sentence｜>' | ds-tokenize encode -t '$tok' --jsonl-ids"
    assert_output "[128803,6366,1]"
    run bash -c "printf '<｜User｜>hi<｜end▁of▁sentence｜>' | ds-tokenize encode -t '$tok' --jsonl-ids --no-special"
    assert_success
    refute_output --partial ",1]"
    # <｜User｜> is not special: it matches even under --no-special
    [[ "$output" == "[128803,"* ]]
    printf '%s' "$output" | ds-tokenize decode -t "$tok" > "$TMP/back"
    run cat "$TMP/back"
    assert_output "<｜User｜>hi<｜end▁of▁sentence｜>"
}

@test "--add-special applies a TemplateProcessing post-processor; off by default" {
    local tok; tok=$(gpt2)
    jq '.post_processor = {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [50256], "tokens": ["<|endoftext|>"]},
                           "</s>": {"id": "</s>", "ids": [0, 1], "tokens": ["!", "\""]}}}' "$tok" > "$TMP/t.json"
    run bash -c "printf 'hello world' | ds-tokenize encode -t '$TMP/t.json' --jsonl-ids"
    assert_output "[31373,995]"
    run bash -c "printf 'hello world' | ds-tokenize encode -t '$TMP/t.json' --jsonl-ids --add-special"
    assert_output "[50256,31373,995,0,1]"
    # written back as read
    ds-tokenize encode -t "$TMP/t.json" --jsonl-ids < /dev/null > /dev/null
    jq 'del(.post_processor.single[2])' "$TMP/t.json" > "$TMP/u.json"
    run bash -c "printf 'hello world' | ds-tokenize encode -t '$TMP/u.json' --jsonl-ids --add-special"
    assert_output "[50256,31373,995]"
}

@test "tokenizer.json validation: ids, merges and added tokens; errors name the file and JSON path" {
    local tok; tok=$(gpt2)
    check() { # check JQ-FILTER EXPECTED-MESSAGE
        jq "$1" "$tok" > "$TMP/bad.json"
        run bash -c "printf 'x' | ds-tokenize encode -t '$TMP/bad.json' --jsonl-ids"
        assert_failure 1
        assert_output --partial "$TMP/bad.json"
        assert_output --partial "$2"
    }
    check '.model.vocab["zzzq"] = 50000' 'id 50000 given twice'
    check '.model.vocab["zzzq"] = -3' 'model.vocab["zzzq"]: id must be a non-negative integer'
    check '.model.merges += ["zzzq a"]' 'model.merges[50000]: "zzzq" is not in model.vocab'
    check '.model.merges += ["Ġ ĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠ"]' 'not in model.vocab'
    check '.added_tokens += [{"id": 50256, "content": "<x>", "special": true}]' 'added_tokens[1]: token id 50256 given twice'
    check '.added_tokens += [{"id": 50257, "content": "<|endoftext|>"}]' 'added_tokens[1]: "<|endoftext|>" is also added_tokens[0]'
    check '.added_tokens[0].content = "hello"' 'model.vocab["hello"]: id 31373, but added_tokens[0] gives it id 50256'
    check '.added_tokens += [{"id": 100, "content": "<y>"}]' 'added_tokens[1]: id 100 is "<y>", but model.vocab["'
    check '.added_tokens += [{"id": 16777215, "content": "<big>"}]' 'added_tokens[1]: id 16777215 is out of range'
    check '.pre_tokenizer = {"type": "Sequence", "pretokenizers": [{"type": "Metaspace"}]}' 'pre_tokenizer.pretokenizers[0]: pre_tokenizer "Metaspace" is not supported'
    check '.pre_tokenizer = {"type": "Whitespace"}' 'no ByteLevel step'
    check '.normalizer = {"type": "Precompiled"}' 'normalizer "Precompiled" is not supported'
    check '.decoder = {"type": "WordPiece"}' 'decoder "WordPiece" is not supported'
    check '.post_processor = {"type": "BertProcessing"}' 'post_processor.cls: expected ["TOKEN", ID]'
    check '.model.dropout = 0.1' 'model.dropout'
    check '.truncation = {"max_length": 4}' 'truncation is not supported'
}

@test "a small tokenizer.json with a huge id is refused at once, not given a huge table" {
    printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 16777215}, "merges": []},
             "pre_tokenizer": {"type": "ByteLevel"}}' > "$TMP/huge.json"
    run bash -c "printf 'x' | ds-tokenize encode -t '$TMP/huge.json' --jsonl-ids"
    assert_failure 1
    assert_output --partial 'model.vocab["b"]: id 16777215 is out of range (2 tokens in the file'
    # ids are checked before any table is sized by them: the file is refused, not loaded slowly
    printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"},
             "added_tokens": [{"id": 16777215, "content": "<big>"}]}' > "$TMP/huge2.json"
    run bash -c "printf 'x' | ds-tokenize encode -t '$TMP/huge2.json' --jsonl-ids"
    assert_failure 1
    assert_output --partial 'added_tokens[0]: id 16777215 is out of range'
}

# ---- Hugging Face tokenizers as a peer (npm), when it can be installed ----------------------------
# peer_js: installs @anush008/tokenizers@0.6.0 into a cache folder once; skips when npm cannot.
peer_js() {
    PEER_DIR="${DS_PEERS:-$HOME/.cache/ds-peers}/tokenizers-0.6.0"
    if [ ! -d "$PEER_DIR/node_modules/@anush008/tokenizers" ]; then
        command -v npm >/dev/null || skip "npm is not installed: no Hugging Face tokenizers peer"
        mkdir -p "$PEER_DIR"
        timeout 300 npm install --prefix "$PEER_DIR" --no-audit --no-fund --silent \
            @anush008/tokenizers@0.6.0 >/dev/null 2>&1 ||
            skip "npm could not install @anush008/tokenizers@0.6.0 (offline?)"
    fi
    export NODE_PATH="$PEER_DIR/node_modules"
    PEER="$BATS_TEST_DIRNAME/../bench/tokenizer-peer.js"
}

@test "peer: Hugging Face tokenizers regenerates the committed vectors (encode and encodeBatch)" {
    needs_data released-tokenizers/qwen3/tokenizer.json
    peer_js
    for m in deepseek_v3 qwen3; do
        for mode in encode batch; do
            node "$PEER" "$mode" "$REL/$m/tokenizer.json" "$VEC/tokenizer-corpus.jsonl" > "$TMP/hf.ids"
            run diff "$TMP/hf.ids" "$VEC/$m.ids.jsonl"
            assert_success
        done
        node "$PEER" decode "$REL/$m/tokenizer.json" "$VEC/$m.ids.jsonl" | jq -j . > "$TMP/hf.txt"
        ds-tokenize decode -t "$REL/$m/tokenizer.json" "$VEC/$m.ids.jsonl" > "$TMP/ds.txt"
        run cmp "$TMP/hf.txt" "$TMP/ds.txt"
        assert_success
    done
}

@test "peer: normalizers, pre-tokenizers, Split behaviors, added-token options, post-processors, decoders" {
    peer_js
    local tok; tok=$(gpt2)
    local corpus="$VEC/tokenizer-corpus.jsonl" vars="$VEC/tokenizer-variants.jsonl"
    mkdir -p "$TMP/v"
    node "$PEER" variants "$tok" "$vars" "$corpus" "$TMP/v"
    local n=0
    while IFS= read -r line; do
        n=$((n + 1))
        for add in "" --add-special; do
            ds-tokenize encode -t "$TMP/v/$n.json" --jsonl --jsonl-ids $add "$corpus" > "$TMP/ds.ids"
            run diff "$TMP/v/$n${add:+.add}.ids" "$TMP/ds.ids"
            [ "$status" -eq 0 ] || echo "variant $n ($(jq -r .name <<<"$line")) $add differs"
            assert_success
        done
        ds-tokenize decode -t "$TMP/v/$n.json" "$TMP/v/$n.ids" > "$TMP/ds.txt"
        run cmp "$TMP/v/$n.txt" "$TMP/ds.txt"
        [ "$status" -eq 0 ] || echo "variant $n ($(jq -r .name <<<"$line")) decode differs"
        assert_success
    done < "$vars"
    [ "$n" -ge 30 ]
}

@test "import-gpt2: an id past 2^32 is reported with its real value, not a clamped one" {
    needs_data tokenizer/gpt2_vocab.json
    jq -c '. + {"zzzq": 5000000000}' "$DATA/tokenizer/gpt2_vocab.json" > "$BATS_TEST_TMPDIR/v.json"
    run ds-tokenize import-gpt2 "$BATS_TEST_TMPDIR/v.json" "$DATA/tokenizer/gpt2_merges.txt" -o "$BATS_TEST_TMPDIR/t.json"
    [ "$status" -eq 1 ]
    [[ "$output" == *'"zzzq": id 5000000000 is out of range'* ]]
    [ ! -e "$BATS_TEST_TMPDIR/t.json" ]
}
