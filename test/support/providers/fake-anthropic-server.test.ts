import { afterEach, describe, expect, it } from "vitest";
import { startFakeAnthropicServer } from "./fake-anthropic-server.ts";
import type { FakeProviderServer } from "./fake-provider-script.ts";

let server: FakeProviderServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

describe("fake Anthropic server", () => {
  it("speaks Messages SSE in the documented event order", async () => {
    server = await startFakeAnthropicServer({ tokenCount: 5 });
    const response = await post(`${server.url}/v1/messages`, { model: "m", max_tokens: 10, system: "s", messages: [{ role: "user", content: "hi" }], stream: true });
    const frames = (await response.text()).split("\n\n").filter(Boolean);
    const names = frames.map((frame) => /^event: (.+)$/m.exec(frame)?.[1]);
    expect(names).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      ...Array<string>(5).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const data = frames.map((frame) => JSON.parse(/^data: (.+)$/m.exec(frame)?.[1] ?? "null") as Record<string, unknown>);
    expect(data.map((item) => item.type)).toEqual(names);
    const text = data.flatMap((item) => (item.type === "content_block_delta" ? [(item.delta as { text: string }).text] : [])).join("");
    expect(text).toBe(server.expectedText());
    expect(data[0]).toMatchObject({ message: { usage: { input_tokens: 3 } } });
    expect(data.at(-2)).toMatchObject({ delta: { stop_reason: "end_turn" }, usage: { output_tokens: 5 } });
  });

  it("answers faults with Anthropic's error bodies and statuses", async () => {
    server = await startFakeAnthropicServer();
    const limited = await post(`${server.url}/v1/messages`, { model: "fake-rate-limit", messages: [] });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    expect(await limited.json()).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    const failed = await post(`${server.url}/v1/messages`, { model: "fake-server-error", messages: [] });
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ type: "error", error: { type: "api_error" } });
  });

  it("cut mode sends a stop_reason but never message_stop", async () => {
    server = await startFakeAnthropicServer();
    const response = await post(`${server.url}/v1/messages`, { model: "fake-cut", messages: [] });
    const body = await response.text();
    expect(body).toContain("event: message_delta");
    expect(body).not.toContain("message_stop");
  });
});
