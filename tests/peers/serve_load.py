#!/usr/bin/env python3
"""serve_load.py — a second process that loads `ds-infer serve` on loopback: CONCURRENCY threads
send REQUESTS requests in all (whole and streamed completions, chat, and bad requests mixed in)
and check every answer. Greedy completions must equal the expected text, which ds-infer generate
produced for the same prompt (and for the same prompt as a chat's user turn); every bad request must get a 4xx with a JSON error.
The summary also gives latency percentiles (ms, request sent to last byte read) of the good
and the bad requests.
Usage: serve_load.py PORT EXPECTED.jsonl REQUESTS CONCURRENCY   (prints one JSON summary line)"""
import http.client, json, sys, threading, time

port, expected_path, total, conc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
expected = [json.loads(l) for l in open(expected_path)]
max_tokens = expected[0]["max_tokens"]

BAD = [  # (method, path, body, status)
    ("POST", "/v1/completions", b"{not json", 400),
    ("POST", "/v1/completions", b'{"prompt": 7}', 400),
    ("POST", "/v1/completions", b'{"prompt": "x", "max_tokens": -3}', 400),
    ("POST", "/v1/completions", b'{"prompt": "x", "temperature": "hot"}', 400),
    ("POST", "/v1/completions", b'{"prompt": "x", "n": 3}', 400),
    ("POST", "/v1/completions", b'{"prompt": "x", "logit_bias": {"5": 100}}', 400),
    ("POST", "/v1/completions", b'{"prompt": "x", "prompt": "y"}', 400),
    ("POST", "/v1/completions", b'{"prompt": [1, 2, 99999999]}', 400),
    ("POST", "/v1/chat/completions", b'{"messages": []}', 400),
    ("POST", "/v1/chat/completions", b'{"messages": [{"role": "user"}]}', 400),
    ("POST", "/v1/completions", b'{"prompt": "' + b"word " * 4000 + b'"}', 400),
    ("POST", "/v1/completions", b"[" * 1100000, 413),
    ("GET", "/v1/completions", b"", 405),
    ("GET", "/nowhere", b"", 404),
]

lock = threading.Lock()
stats = {"good": 0, "bad": 0, "wrong": [], "tokens": 0, "ms_good": [], "ms_bad": []}


def request(method, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def good(i):
    e = expected[i % len(expected)]
    kind = i % 4  # whole and streamed completions, whole and streamed chat with the prompt as the user turn
    chat = kind >= 2
    body = {"max_tokens": max_tokens, "temperature": 0}
    if chat:
        body["messages"] = [{"role": "user", "content": e["prompt"]}]
    else:
        body["prompt"] = e["prompt"]
    if kind % 2:
        body["stream"] = True
    status, ctype, data = request("POST", "/v1/chat/completions" if chat else "/v1/completions", json.dumps(body).encode())
    if status != 200:
        return f"request {i}: status {status}: {data[:200]!r}"
    if kind % 2 == 0:
        ans = json.loads(data)
        c = ans["choices"][0]
        text, n = (c["message"]["content"] if chat else c["text"]), ans["usage"]["completion_tokens"]
    else:
        if not ctype.startswith("text/event-stream"):
            return f"request {i}: stream content type {ctype}"
        events = [l[6:] for l in data.decode().split("\n") if l.startswith("data: ")]
        if events[-1] != "[DONE]":
            return f"request {i}: stream does not end with [DONE]"
        chunks = [json.loads(x) for x in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") if chat else c["choices"][0]["text"] for c in chunks)
        n = None
    want = e["chat_completion"] if chat else e["completion"]
    if text != want:
        return f"request {i} ({'chat' if chat else 'completion'}): {text!r} != expected {want!r}"
    with lock:
        stats["tokens"] += n if n is not None else e["chat_n_tokens" if chat else "n_tokens"]
    return None


def bad(i):
    method, path, body, want = BAD[i % len(BAD)]
    status, ctype, data = request(method, path, body)
    if status != want:
        return f"bad request {i} ({body[:40]!r}): status {status}, expected {want}"
    err = json.loads(data).get("error", {})
    if not err.get("message"):
        return f"bad request {i}: no error message"
    return None


def worker(ids):
    for i in ids:
        t = time.time()
        try:
            problem = bad(i) if i % 5 == 4 else good(i)
        except Exception as x:  # a dropped connection or a body that is not JSON
            problem = f"request {i}: {type(x).__name__}: {x}"
        ms = (time.time() - t) * 1000
        with lock:
            stats["ms_bad" if i % 5 == 4 else "ms_good"].append(ms)
            if problem:
                stats["wrong"].append(problem)
            elif i % 5 == 4:
                stats["bad"] += 1
            else:
                stats["good"] += 1


t0 = time.time()
threads = [threading.Thread(target=worker, args=(range(k, total, conc),)) for k in range(conc)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sec = time.time() - t0
health = request("GET", "/health", b"")[0]


def percentiles(ms):
    ms = sorted(ms)
    at = lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))], 1) if ms else None
    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)}


print(json.dumps({"requests": total, "concurrency": conc, "good": stats["good"], "bad_answered_4xx": stats["bad"],
                  "wrong": stats["wrong"][:10], "n_wrong": len(stats["wrong"]), "health_after": health,
                  "seconds": round(sec, 2), "completion_tokens_per_s": round(stats["tokens"] / sec, 1),
                  "latency_ms_good": percentiles(stats["ms_good"]), "latency_ms_bad": percentiles(stats["ms_bad"])}))
sys.exit(1 if stats["wrong"] or health != 200 else 0)
