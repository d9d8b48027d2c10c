#!/usr/bin/env bats
# ds-infer chat: piped turns, the replies against ds-infer generate on the same conversation, cache
# reuse, /reset and /system, --max-len, the Qwen3 template, SIGINT, and a terminal (tmux).
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 300000
    ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$d/train-000000.tar" \
        --tokenizer "$d/tok.json" --seq-len 64 --batch 8 --steps 300 --lr 3e-3 --eval-every 0 \
        --threads 1 --peak-gflops 10 -o "$d/ck.tar" --metrics /dev/null
    printf 'Hello there\nWhat of the king?\nSpeak again.\n' > "$d/turns.txt"
}

chat() { ds-infer chat -m "$BATS_FILE_TMPDIR/ck.tar" --max-tokens 24 "$@"; }
# the transcript's conversations as generate records, and generate's greedy replies to them
regen() { jq -c '{messages}' "$1" | ds-infer generate -m "$2" --temperature 0 --max-tokens 24 --ordered "${@:3}" \
          | jq -c '[.completion, .finish_reason, .n_prompt_tokens]'; }
replies() { jq -c '[.reply, .finish_reason, .n_prompt_tokens]' "$1"; }

@test "chat: piped turns print only the replies, which equal generate's on the same conversation; the cache is reused" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    chat --temperature 0 --transcript "$t/tr.jsonl" < "$d/turns.txt" > "$t/out" 2> "$t/err"
    [ ! -s "$t/err" ]
    [ "$(wc -l < "$t/tr.jsonl")" -eq 3 ]
    # stdout: each reply and a newline, nothing else
    cmp "$t/out" <(jq -j '.reply + "\n"' "$t/tr.jsonl")
    r1=$(jq -rs '.[0].reply' "$t/tr.jsonl")
    [ -n "$r1" ]
    # turn 2 is the conversation so far: turn 1's reply rendered in its prompt
    jq -se '.[1].messages == [{"role":"user","content":"Hello there"},{"role":"assistant","content":.[0].reply},
                              {"role":"user","content":"What of the king?"}]' "$t/tr.jsonl"
    jq -se '.[1].prompt | startswith("User: Hello there\nAssistant: ")' "$t/tr.jsonl"
    jq -se '.[1].prompt | contains("Assistant: " + ($r + "\nUser: What of the king?\nAssistant:"))' --arg r "$r1" "$t/tr.jsonl"
    # the same conversations built here, through generate --temperature 0
    jq -nc --arg r "$r1" '{messages: [{role: "user", content: "Hello there"}, {role: "assistant", content: $r},
                                       {role: "user", content: "What of the king?"}]}' \
        | ds-infer generate -m "$d/ck.tar" --temperature 0 --max-tokens 24 | jq -r .completion > "$t/g2"
    [ "$(cat "$t/g2")" = "$(jq -rs '.[1].reply' "$t/tr.jsonl")" ]
    diff <(regen "$t/tr.jsonl" "$d/ck.tar") <(replies "$t/tr.jsonl")
    # turn 1 prefilled everything; later turns only what their rendering adds
    jq -se '.[0].n_cached_tokens == 0 and .[1].n_cached_tokens >= .[0].n_prompt_tokens and
            .[2].n_cached_tokens >= .[1].n_prompt_tokens and all(.[]; .n_cached_tokens < .n_prompt_tokens)' "$t/tr.jsonl"
    # --prefill-chunk does not change a reply (nor does prefilling from a cached prefix)
    chat --temperature 0 --prefill-chunk 3 < "$d/turns.txt" | cmp - "$t/out"
}

@test "chat: the same seed gives the same replies; /reset forgets the conversation; /system" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    printf 'Hello there\nWhat of the king?\n/reset\nHello there\n' > "$t/in"
    chat --seed 5 --transcript "$t/a.jsonl" < "$t/in" > "$t/a"
    chat --seed 5 < "$t/in" | cmp - "$t/a"
    chat --seed 6 < "$t/in" > "$t/b"
    ! cmp -s "$t/a" "$t/b"
    # after /reset: the first turn again, with its reply (turns count from 1 again), from the cache
    jq -se '(.[2].messages | length) == 1 and .[2].reply == .[0].reply and .[1].reply != .[0].reply and
            .[2].n_cached_tokens == .[2].n_prompt_tokens - 1' "$t/a.jsonl"
    # /system mid-conversation: kept turns under the new system message; a prefix that differs is
    # prefilled again and the reply is still generate's
    printf 'Hello there\n/system Be a herald.\nWhat of the king?\n/system\nSpeak again.\n' \
        | chat --temperature 0 --system 'Be brief.' --transcript "$t/s.jsonl" > /dev/null
    jq -se '.[0].messages[0] == {"role":"system","content":"Be brief."} and
            .[1].messages[0] == {"role":"system","content":"Be a herald."} and (.[1].messages | length) == 4 and
            .[1].n_cached_tokens < .[0].n_prompt_tokens / 2 and .[2].messages[0].role == "user" and
            (.[2].messages | length) == 5 and .[2].n_cached_tokens == 0' "$t/s.jsonl"
    diff <(regen "$t/s.jsonl" "$d/ck.tar") <(replies "$t/s.jsonl")
    # r1 asks one question per turn
    chat --temperature 0 --template r1 --transcript "$t/r.jsonl" < "$d/turns.txt" > /dev/null
    jq -se 'all(.[]; (.messages | length) == 1) and (.[0].prompt | contains("<think>"))' "$t/r.jsonl"
    diff <(regen "$t/r.jsonl" "$d/ck.tar" --template r1) <(replies "$t/r.jsonl")
}

@test "chat: --stop cuts the reply as generate does; the replies stream what they print" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    chat --temperature 0 --stop 'e' --transcript "$t/tr.jsonl" < "$d/turns.txt" > "$t/out"
    jq -se 'all(.[]; .finish_reason == "stop" and (.reply | contains("e") | not))' "$t/tr.jsonl"
    cmp "$t/out" <(jq -j '.reply + "\n"' "$t/tr.jsonl")
    diff <(regen "$t/tr.jsonl" "$d/ck.tar" --stop e) <(replies "$t/tr.jsonl")
}

@test "chat: a conversation past --max-len drops its oldest turns, keeps the system message; a line too long is refused" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    for i in 1 2 3 4 5 6; do sed -n "$((i * 11))p" "$d/train.txt" | tr -d '\r'; done | grep -v '^$' > "$t/in"
    chat --temperature 0 --max-len 128 --system 'Be brief.' --transcript "$t/tr.jsonl" < "$t/in" > /dev/null 2> "$t/err"
    grep -q 'the conversation no longer fits --max-len 128: dropped its oldest [0-9]* messages' "$t/err"
    jq -se 'all(.[]; .n_prompt_tokens + 24 <= 128 and .messages[0] == {"role":"system","content":"Be brief."}) and
            any(.[]; .dropped > 0) and (.[-1].messages | length) < 2 * length' "$t/tr.jsonl"
    diff <(regen "$t/tr.jsonl" "$d/ck.tar") <(replies "$t/tr.jsonl")
    # a message that alone leaves no room: named, the session goes on, exit status 1
    { head -c 2000 "$d/train.txt" | tr '\n' ' '; echo; echo 'Hello there'; } > "$t/long"
    run chat --temperature 0 --max-len 128 --transcript "$t/l.jsonl" < "$t/long"
    [ "$status" -eq 1 ]
    assert_output --partial "ds-infer: turn 1: the message makes a prompt of"
    assert_output --partial "which leaves no room for --max-tokens 24 in --max-len 128"
    jq -se 'length == 1 and .[0].messages == [{"role":"user","content":"Hello there"}]' "$t/l.jsonl"
}

@test "chat: usage errors exit 2; unknown commands and models without a tokenizer are refused" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    run ds-infer chat --help
    [ "$status" -eq 0 ]
    assert_output --partial "Usage: ds-infer chat -m MODEL"
    run ds-infer --help
    assert_output --partial "ds-infer chat -m MODEL"
    run ds-infer chat < /dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "chat: -m MODEL is required"
    run chat --template nope < /dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "--template: model, plain or r1"
    run chat --max-len 20 < /dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "--max-tokens 24 leaves no room for a conversation in --max-len 20 (at most 18)"
    run chat "$d/turns.txt"
    [ "$status" -eq 2 ]
    assert_output --partial "chat: no input files (turns are read from stdin)"
    run chat --temperature 0 <<< $'/nope\nHello there'
    [ "$status" -eq 1 ]
    assert_output --partial "ds-infer: unknown command '/nope' (/reset, /system TEXT, /quit)"
    chat --temperature 0 <<< $'/nope\nHello there' 2> /dev/null | grep -q . # the next line is answered
    run chat --template model < /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "--template model: the model has no tokenizer_config.json"
    ds-pretrain export "$d/ck.tar" "$t/hf"
    rm "$t/hf/tokenizer.json"
    run ds-infer chat -m "$t/hf" < /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "chat needs a model with tokenizer.json"
    # a write error on stdout ends the session with a message
    run bash -c "echo 'Hello there' | ds-infer chat -m '$d/ck.tar' --max-tokens 4 > /dev/full"
    [ "$status" -eq 1 ]
    assert_output --partial "<stdout>: write error"
    run chat --transcript "$t/no/such/dir/tr.jsonl" < /dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "$t/no/such/dir/tr.jsonl: cannot create"
    # /quit ends the session: the lines after it are not read
    printf 'Hello there\n/quit\nWhat of the king?\n' | chat --temperature 0 --transcript "$t/q.jsonl" > /dev/null
    [ "$(wc -l < "$t/q.jsonl")" -eq 1 ]
}

@test "chat: a model with the released Qwen3 template renders <|im_start|> turns and stops at <|im_end|>" {
    needs_data released-tokenizers/qwen3/tokenizer_config.json
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" q="$DATA/released-tokenizers/qwen3"
    jq '.vocab_size = 151936 | .hidden_size = 32 | .intermediate_size = 64 | .num_hidden_layers = 1 |
        .num_attention_heads = 2 | .num_key_value_heads = 1' "$ROOT/recipes/student-tiny.json" > "$t/cfg.json"
    ds-pretrain train --config "$t/cfg.json" --data "$d/train-000000.tar" --seq-len 8 --batch 1 --steps 1 \
        --threads 1 --eval-every 0 --metrics /dev/null -o "$t/m.tar"
    ds-pretrain export "$t/m.tar" "$t/hf"
    cp "$q/tokenizer.json" "$q/tokenizer_config.json" "$t/hf/"
    # a few SFT steps teach the tiny model to end its turn with <|im_end|>
    for i in $(seq 1 16); do
        printf '{"messages":[{"role":"user","content":"hi %d"},{"role":"assistant","content":"ok"}]}\n' "$i"
    done > "$t/sft.jsonl"
    ds-sft train -m "$t/hf" --data "$t/sft.jsonl" --template model --seq-len 32 --batch 2 --steps 25 --lr 2e-2 \
        --eval-every 0 --threads 2 --metrics /dev/null -o "$t/q.tar"
    # the default template is the model's own
    printf 'hi 3\nhi 5\n' | ds-infer chat -m "$t/q.tar" --temperature 0 --max-tokens 40 --transcript "$t/tr.jsonl" > "$t/out"
    jq -se '.[0].prompt == "<|im_start|>user\nhi 3<|im_end|>\n<|im_start|>assistant\n" and
            (.[1].prompt | startswith("<|im_start|>user\nhi 3<|im_end|>\n<|im_start|>assistant\n")) and
            (.[1].prompt | endswith("<|im_end|>\n<|im_start|>user\nhi 5<|im_end|>\n<|im_start|>assistant\n")) and
            all(.[]; .finish_reason == "eos" and .n_tokens < 40 and (.reply | contains("ok")) and
                     (.reply | contains("<|im_end|>") | not)) and
            .[1].n_cached_tokens >= .[0].n_prompt_tokens' "$t/tr.jsonl"
    ! grep -q '<|im_end|>' "$t/out"
    diff <(regen "$t/tr.jsonl" "$t/q.tar" --template model) <(replies "$t/tr.jsonl")
}

@test "chat: SIGINT during a reply stops it; the session goes on" {
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR"
    printf 'Hello there\n' > "$t/in"
    ds-infer chat -m "$d/ck.tar" --max-len 100000 --max-tokens 99000 --transcript "$t/tr.jsonl" < "$t/in" > "$t/out" &
    local pid=$!
    for i in $(seq 1 200); do [ -s "$t/out" ] && break; sleep 0.05; done
    kill -INT "$pid"
    wait "$pid"
    jq -e '.finish_reason == "interrupted" and .n_tokens < 99000' "$t/tr.jsonl"
    cmp "$t/out" <(jq -j '.reply + "\n"' "$t/tr.jsonl")
}

# polls the pane of tmux session $1 until it shows $2 (a fixed string); fails after 20 s
pane_shows() {
    for i in $(seq 1 200); do
        tmux -L "$1" capture-pane -p -J -t "$1" | grep -qF -- "$2" && return 0
        sleep 0.1
    done
    echo "the pane never showed '$2':"; tmux -L "$1" capture-pane -p -J -t "$1"
    return 1
}

@test "chat: on a terminal (tmux): a prompt, the reply, /quit exits 0; Ctrl-C at the prompt exits 0" {
    command -v tmux > /dev/null || skip "tmux is not installed"
    local t="$BATS_TEST_TMPDIR" d="$BATS_FILE_TMPDIR" s="dschat$$"
    local cmd="ds-infer chat -m '$d/ck.tar' --temperature 0 --max-tokens 24 --verbose"
    # the reply's longest line, as the pane will show it
    echo 'What of the king?' | eval "$cmd" 2> /dev/null | awk 'length > m { m = length; l = $0 } END { print l }' > "$t/want"
    [ "$(wc -c < "$t/want")" -gt 4 ]
    tmux -L "$s" new-session -d -s "$s" -x 200 -y 50 "PATH='$PATH' bash -c \"$cmd; echo \\\$? > '$t/rc'\""
    pane_shows "$s" "/reset, /system TEXT, /quit"
    pane_shows "$s" "> "
    tmux -L "$s" send-keys -t "$s" 'What of the king?' Enter
    pane_shows "$s" "$(cat "$t/want")" || { tmux -L "$s" kill-server; false; }
    pane_shows "$s" "24 generated, length]" || { tmux -L "$s" kill-server; false; }
    tmux -L "$s" send-keys -t "$s" '/quit' Enter
    for i in $(seq 1 100); do [ -s "$t/rc" ] && break; sleep 0.1; done
    tmux -L "$s" kill-server 2> /dev/null || true
    [ "$(cat "$t/rc")" = 0 ]
    rm "$t/rc"
    tmux -L "$s" new-session -d -s "$s" -x 200 -y 50 "PATH='$PATH' bash -c \"$cmd; echo \\\$? > '$t/rc'\""
    pane_shows "$s" "> "
    tmux -L "$s" send-keys -t "$s" C-c
    for i in $(seq 1 100); do [ -s "$t/rc" ] && break; sleep 0.1; done
    tmux -L "$s" kill-server 2> /dev/null || true
    [ "$(cat "$t/rc")" = 0 ]
}
