// llama_cpp.mjs — the llama.cpp side of the GGUF export test, through node-llama-cpp's prebuilt
// CPU libraries. Reads {"id", "ids": [...], "n": N, "score": [...]} per line: greedy-decodes N
// tokens after ids, and gives the log-probabilities of the tokens in score after ids.
// Prints {"id", "greedy": [...], "logprobs": [...]} per line.
// Usage: node llama_cpp.mjs MODEL.gguf < requests.jsonl
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { createInterface } from "node:readline";

const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });
const model = await llama.loadModel({ modelPath: process.argv[2] });
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  const out = { id: req.id, greedy: [], logprobs: [] };
  {
    const ctx = await model.createContext({ contextSize: 512, threads: 1, batchSize: 512, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
    const seq = ctx.getSequence();
    let n = 0;
    for await (const t of seq.evaluate(req.ids, { temperature: 0, yieldEogToken: true })) {
      out.greedy.push(t);
      if (++n >= req.n) break;
    }
    await ctx.dispose();
  }
  if (req.score && req.score.length) {
    const ctx = await model.createContext({ contextSize: 512, threads: 1, batchSize: 512, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
    const seq = ctx.getSequence();
    const all = [...req.ids, ...req.score];
    // The distribution after each prefix token predicts the next one.
    const input = all.slice(0, -1).map((t, i) =>
      i >= req.ids.length - 1 ? [t, { generateNext: { probabilities: true } }] : t);
    const res = await seq.controlledEvaluate(input);
    for (let i = req.ids.length - 1; i < all.length - 1; i++) {
      const p = res[i].next.probabilities.get(all[i + 1]);
      out.logprobs.push(p > 0 ? Math.log(p) : -Infinity);
    }
    await ctx.dispose();
  }
  console.log(JSON.stringify(out));
}
await model.dispose();
