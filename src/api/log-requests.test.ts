import { Writable } from "node:stream";
import Fastify, { type FastifyBaseLogger } from "fastify";
import { describe, expect, it } from "vitest";
import { createLogger } from "../logging/create-logger.ts";
import { createRequestLogController } from "./log-requests.ts";

describe("request logging", () => {
  it("writes one line per request, with the path but not its query (a stream read token may be there)", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const loggerInstance: FastifyBaseLogger = createLogger({ level: "info", destination });
    const app = Fastify({ loggerInstance, logController: createRequestLogController() });
    app.get("/api/stream/:taskId", (_request, reply) => reply.send({ ok: true }));
    await app.ready();

    const response = await app.inject({ method: "GET", url: "/api/stream/task_abc?token=v1.secret-read-token" });
    expect(response.statusCode).toBe(200);
    await app.inject({ method: "GET", url: "/nowhere" });

    expect(lines.map((line) => line.msg)).toEqual(["request", "request"]);
    expect(lines[0]).toMatchObject({ method: "GET", path: "/api/stream/task_abc", statusCode: 200 });
    expect(typeof lines[0]?.responseTimeMs).toBe("number");
    expect(lines[1]).toMatchObject({ path: "/nowhere", statusCode: 404 });
    expect(JSON.stringify(lines)).not.toContain("secret-read-token");
    await app.close();
  });
});
