import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createOpenAiProvider } from "./openai-provider.ts";

describe("the OpenAI adapter's connections", () => {
  it("goes back to the keep-alive pool after a stream that ends with [DONE]: three replies, one connection", async () => {
    let connections = 0;
    const server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (delta: object, finish: string | null): string =>
        `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 0, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      response.write(chunk({ role: "assistant", content: "Hello" }, null));
      // As a model streams: the end comes in a later network read than the text, so the client's
      // body reader runs before the body is complete (a timer shapes the stream; nothing waits on it).
      setTimeout(() => response.end(`${chunk({}, "stop")}data: [DONE]\n\n`), 10);
    });
    server.on("connection", () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    server.unref();
    const provider = createOpenAiProvider({ apiKey: "test", baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, idleTimeoutMs: 5_000 });
    for (let reply = 0; reply < 3; reply += 1) {
      let text = "";
      for await (const event of provider.stream({ model: "m", messages: [{ role: "user", content: "hi" }] }, new AbortController().signal)) {
        if (event.type === "text-delta") text += event.delta;
      }
      expect(text).toBe("Hello");
    }
    expect(connections).toBe(1);
    server.closeAllConnections();
  });
});
