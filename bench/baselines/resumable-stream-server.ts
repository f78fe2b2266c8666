// Baseline 3: Vercel's resumable-stream over the same Redis. As the library is
// meant to be used, the first GET runs the generation in its own process and
// reads it directly; a resuming GET (?skip=<characters>) asks the producer for
// the rest over Redis pub/sub. One shared publisher and one shared subscriber connection.
import { Redis } from "ioredis";
import { createResumableStreamContext } from "resumable-stream/ioredis";
import { closed, endFrame, generate, runBaseline, sseHeaders, textFrame, type GenerationPlan } from "./baseline-server.ts";

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) throw new Error("REDIS_URL is required");
const publisher = new Redis(redisUrl, { connectionName: "bench-resumable:publisher" });
const subscriber = new Redis(redisUrl, { connectionName: "bench-resumable:subscriber" });
const context = createResumableStreamContext({ waitUntil: null, keyPrefix: "bench-resumable", publisher, subscriber });
const plans = new Map<string, GenerationPlan>();

const makeStream = (plan: GenerationPlan): ReadableStream<string> =>
  new ReadableStream<string>({
    start: async (controller) => {
      let seq = 0;
      await generate(plan, (delta) => controller.enqueue(textFrame(delta, (seq += 1))));
      controller.enqueue(endFrame(seq + 1));
      controller.close();
    },
  });

await runBaseline({
  start: (id, plan) => void plans.set(id, plan),
  serve: async (id, resume, _request, response) => {
    const plan = plans.get(id) ?? { tokensPerSecond: 20, tokenCount: 100 };
    const stream = await context.resumableStream(id, () => makeStream(plan), resume.skipCharacters);
    if (!stream) return void response.writeHead(204).end();
    response.writeHead(200, sseHeaders);
    response.flushHeaders();
    const reader = stream.getReader();
    void closed(response).then(() => reader.cancel().catch(() => undefined));
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) break;
      response.write(value);
    }
    response.end();
  },
  close: () => {
    publisher.disconnect();
    subscriber.disconnect();
  },
});
