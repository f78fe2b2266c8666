// Baseline 4, the floor: the provider streamed straight to the client by one
// minimal Node process. No queue, no log, no resume: what any durable design costs is measured against this.
import { generate, runBaseline, sseHeaders, textFrame, endFrame, type GenerationPlan } from "./baseline-server.ts";

const plans = new Map<string, GenerationPlan>();

await runBaseline({
  start: (id, plan) => void plans.set(id, plan),
  serve: async (id, _resume, _request, response) => {
    const plan = plans.get(id);
    plans.delete(id);
    if (!plan) return void response.writeHead(404).end();
    const abort = new AbortController();
    response.once("close", () => abort.abort());
    response.writeHead(200, sseHeaders);
    let seq = 0;
    try {
      await generate(plan, (delta) => void response.write(textFrame(delta, (seq += 1))), abort.signal);
      response.end(endFrame(seq + 1));
    } catch {
      response.destroy();
    }
  },
});
