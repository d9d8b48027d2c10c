// llama_cpp_speed.mjs — llama.cpp's CPU speed on a GGUF model through node-llama-cpp: prompt
// processing (one evaluation of P tokens) and batch-1 greedy decode (G tokens after a short prompt),
// each the best of R runs, at T threads. Prints one JSON line.
// Usage: node llama_cpp_speed.mjs MODEL.gguf THREADS P G R VOCAB (prompt ids as decode_peers.sh makes them)
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [path, threads, P, G, R, V] = [process.argv[2], ...process.argv.slice(3).map(Number)];
const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });
const model = await llama.loadModel({ modelPath: path });
const prompt = Array.from({ length: P }, (_, i) => 1 + ((i * 7919) % Math.min(V - 2, 1000)));
let pp = 0, tg = 0;
for (let r = 0; r < R; r++) {
  const ctx = await model.createContext({ contextSize: P + G + 16, threads, batchSize: P, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
  const seq = ctx.getSequence();
  let t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  pp = Math.max(pp, P / ((performance.now() - t0) / 1e3));
  await seq.clearHistory();
  // decode: time from the first generated token to the G-th, so the prompt is not counted
  let n = 0, t1 = 0;
  for await (const _ of seq.evaluate(prompt.slice(0, 8), { temperature: 0, yieldEogToken: true })) {
    if (n === 0) t1 = performance.now();
    if (++n > G) break;
  }
  tg = Math.max(tg, G / ((performance.now() - t1) / 1e3));
  await ctx.dispose();
}
console.log(JSON.stringify({ peer: "llama.cpp (node-llama-cpp 3.21.1)", threads, prompt_tokens_per_s: pp,
  decode_tokens_per_s: tg }));
await model.dispose();
