import { createConnection } from "node:net";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/config.ts";
import { createLogger } from "../../logging/create-logger.ts";
import { buildApp } from "../build-app.ts";

describe("a server that is shutting down", () => {
  it("answers a request on a connection still open at close 503 SERVICE_UNAVAILABLE in the error shape, with Retry-After", async () => {
    // /readyz waits for this probe, so the connection is busy when close() begins.
    let releaseProbe = (): void => undefined;
    const probe = new Promise<void>((resolve) => (releaseProbe = resolve));
    const config = loadConfig({ AUTH_SECRET: "s".repeat(32), PORT: "0" }, "/");
    const app = await buildApp(config, { logger: createLogger({ level: "silent" }), readinessProbes: [{ name: "held", check: () => probe }] });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    const socket = createConnection({ host: "127.0.0.1", port: typeof address === "object" && address ? address.port : 0 });
    socket.on("error", () => undefined);
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    try {
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.write("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
      await new Promise<void>((resolve) => app.server.once("request", () => resolve()));
      const closed = app.close();
      // server.close() is called once close() has begun (and the app counts as closing); until then, yield.
      while (app.server.listening) await new Promise((resolve) => setImmediate(resolve));
      // Pipelined behind the held request: it arrives while the app is closing.
      socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      await new Promise<void>((resolve) => app.server.once("request", () => resolve()));
      releaseProbe();
      await ended;
      await closed;
      const answers = received.split(/(?=HTTP\/1\.1 )/);
      expect(answers[0]).toMatch(/^HTTP\/1\.1 200 /);
      expect(answers[1]).toMatch(/^HTTP\/1\.1 503 /);
      expect(answers[1]).toMatch(/\r\nretry-after: 1\r\n/i);
      expect(answers[1]).toMatch(/\r\nconnection: close\r\n/i);
      const body = JSON.parse(answers[1]?.split("\r\n\r\n")[1] ?? "") as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: "SERVICE_UNAVAILABLE", message: "The server is shutting down; retry." });
    } finally {
      releaseProbe();
      socket.destroy();
      await app.close();
    }
  });
});
