#!/usr/bin/env bats
# ds-infer serve: the OpenAI-compatible server under load from a second process on loopback.
load helpers

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    shakespeare_shards "$d" 300000
    ds-pretrain train --config "$ROOT/recipes/tiny-moe.json" --data "$d/train-000000.tar" \
        --tokenizer "$d/tok.json" --seq-len 64 --batch 8 --steps 150 --lr 3e-3 --eval-every 0 \
        --threads 1 --peak-gflops 10 -o "$d/m.tar" --metrics /dev/null
    for i in $(seq 1 12); do
        printf '{"id":"p%d","prompt":"%s"}\n' "$i" "$(grep -v '^$' "$d/train.txt" | sed -n "$((i * 7))p" | tr -d '"\\')"
    done > "$d/prompts.jsonl"
    jq -c '{id: .id, messages: [{role: "user", content: .prompt}]}' "$d/prompts.jsonl" > "$d/chats.jsonl"
    # what the server must answer: ds-infer generate's greedy samples for the same prompts
    ds-infer generate -m "$d/m.tar" --temperature 0 --max-tokens 16 --ordered "$d/prompts.jsonl" > "$d/gen.jsonl"
    ds-infer generate -m "$d/m.tar" --temperature 0 --max-tokens 16 --ordered "$d/chats.jsonl" > "$d/chat.jsonl"
    jq -s -c '(.[0:12]) as $p | (.[12:24]) as $g | (.[24:36]) as $c | range(0; 12) |
        {prompt: $p[.].prompt, completion: $g[.].completion, n_tokens: $g[.].n_tokens,
         chat_completion: $c[.].completion, chat_n_tokens: $c[.].n_tokens, max_tokens: 16}' \
        "$d/prompts.jsonl" "$d/gen.jsonl" "$d/chat.jsonl" > "$d/expected.jsonl"
}

# start_server ARGS...: ds-infer serve on a free loopback port; sets PORT and PID
start_server() {
    local t="$BATS_TEST_TMPDIR"
    ds-infer serve -m "$BATS_FILE_TMPDIR/m.tar" --port 0 --port-file "$t/port" --threads 1 "$@" 2> "$t/serve.err" &
    PID=$!
    for _ in $(seq 1 300); do [ -s "$t/port" ] && break; sleep 0.1; done
    PORT=$(cat "$t/port")
}

# stop_server: SIGTERM, then the exit status in STOPPED and the server's stderr in STOP_LOG
# (not under `run`: the server is a child of the test's own shell)
stop_server() {
    kill -TERM "$PID"
    STOPPED=0
    wait "$PID" || STOPPED=$?
    STOP_LOG=$(cat "$BATS_TEST_TMPDIR/serve.err")
    echo "$STOP_LOG"
}

@test "serve: 16 concurrent clients, 320 requests with bad ones mixed in: every answer right, no crash" {
    start_server --max-tokens 16 --batch 8
    run python3 "$ROOT/tests/peers/serve_load.py" "$PORT" "$BATS_FILE_TMPDIR/expected.jsonl" 320 16
    echo "$output"
    local load="$output" st=$status
    stop_server
    [ "$st" -eq 0 ]
    [ "$STOPPED" -eq 0 ] # a clean exit (and, in the sanitizer build, no leak or memory error)
    echo "$load" | jq -e '.good == 256 and .bad_answered_4xx == 64 and .n_wrong == 0 and .health_after == 200'
    echo "$STOP_LOG" | tail -1 | jq -e '.requests == 256 and .bad_requests == 64 and .completion_tokens > 0'
}

@test "serve: the same seed gives the same sampled answer; models, health and methods" {
    start_server --max-tokens 16
    local body='{"prompt":"ROMEO:","max_tokens":12,"temperature":1,"seed":7}'
    a=$(curl -sf -X POST "127.0.0.1:$PORT/v1/completions" -d "$body" | jq -r '.choices[0].text')
    b=$(curl -sf -X POST "127.0.0.1:$PORT/v1/completions" -d "$body" | jq -r '.choices[0].text')
    c=$(curl -sf -X POST "127.0.0.1:$PORT/v1/completions" -d "${body/\"seed\":7/\"seed\":8}" | jq -r '.choices[0].text')
    curl -sf "127.0.0.1:$PORT/v1/models" | jq -e '.data[0].object == "model"'
    curl -sf "127.0.0.1:$PORT/health" | jq -e '.status == "ok"'
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "127.0.0.1:$PORT/v1/completions")
    stop_server
    [ "$STOPPED" -eq 0 ]
    [ "$a" = "$b" ]
    [ "$a" != "$c" ]
    [ "$code" = 405 ]
}

@test "serve: usage errors exit 2; an address in use fails with exit 1 and says so" {
    run ds-infer serve --port 1
    [ "$status" -eq 2 ]
    run ds-infer serve -m "$BATS_FILE_TMPDIR/m.tar" --port 70000
    [ "$status" -eq 2 ]
    start_server
    run ds-infer serve -m "$BATS_FILE_TMPDIR/m.tar" --port "$PORT"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot listen on 127.0.0.1:$PORT"* ]]
    stop_server
    [ "$STOPPED" -eq 0 ]
}
