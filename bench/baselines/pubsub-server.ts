// Baseline 2, the seed design's "after" as written: per chunk RPUSH + PUBLISH,
// one pub/sub connection per client, no sequence numbers, no coalescing. A
// client (re)connecting subscribes, replays the whole list, then forwards live
// messages; without sequence numbers a chunk in both is sent twice, and a
// resume cannot skip what the client already has.
import { Redis } from "ioredis";
import { closed, endFrame, generate, runBaseline, sseHeaders, textFrame } from "./baseline-server.ts";

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) throw new Error("REDIS_URL is required");
const prefix = "bench-pubsub:";
const commands = new Redis(redisUrl, { connectionName: "bench-pubsub:commands" });
const done = "\u0000done";

await runBaseline({
  start: (id, plan) => {
    const key = `${prefix}${id}`;
    void generate(plan, async (delta) => {
      await commands.rpush(key, delta);
      await commands.publish(key, delta);
    }).then(async () => {
      await commands.rpush(key, done);
      await commands.expire(key, 3600);
      await commands.publish(key, done);
    });
  },
  serve: async (id, _resume, _request, response) => {
    const key = `${prefix}${id}`;
    const subscriber = new Redis(redisUrl, { connectionName: "bench-pubsub:client" });
    const gone = closed(response);
    let finished = false;
    const send = (message: string): void => {
      if (finished) return;
      if (message === done) {
        finished = true;
        response.end(endFrame());
      } else response.write(textFrame(message));
    };
    const live: string[] = [];
    let replaying = true;
    subscriber.on("message", (_channel: string, message: string) => (replaying ? live.push(message) : send(message)));
    try {
      await subscriber.subscribe(key);
      response.writeHead(200, sseHeaders);
      response.flushHeaders();
      for (const message of await commands.lrange(key, 0, -1)) send(message);
      replaying = false;
      for (const message of live.splice(0)) send(message);
      await gone;
    } finally {
      subscriber.disconnect();
    }
  },
  close: () => {
    commands.disconnect();
  },
});
