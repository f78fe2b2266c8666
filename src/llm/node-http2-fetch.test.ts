import { once } from "node:events";
import { constants, createServer, type Settings, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { nodeHttp2Fetch } from "./node-http2-fetch.ts";
import { createOpenAiProvider } from "./openai-provider.ts";

interface SeenRequest {
  method: string;
  path: string;
  body: string;
  authorization: string | undefined;
}

/** An h2c server: `answer` gets each request's stream once its body is in; every session is counted. */
async function h2cServer(
  answer: (stream: ServerHttp2Stream, request: SeenRequest) => void,
  settings: Settings = {},
): Promise<{ origin: string; requests: SeenRequest[]; sessions: ServerHttp2Session[]; server: Http2Server; streamClosed: Promise<number> }> {
  const requests: SeenRequest[] = [];
  const sessions: ServerHttp2Session[] = [];
  const server = createServer({ settings });
  server.on("session", (session) => sessions.push(session));
  // The RST_STREAM code the first stream closed with (0: none).
  let firstClosed: (code: number) => void = () => undefined;
  const streamClosed = new Promise<number>((resolve) => (firstClosed = resolve));
  server.on("stream", (stream, headers) => {
    stream.on("close", () => firstClosed(stream.rstCode ?? 0));
    let body = "";
    stream.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    stream.on("end", () => {
      const request = { method: String(headers[":method"]), path: String(headers[":path"]), body, authorization: headers.authorization };
      requests.push(request);
      answer(stream, request);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  onTestFinished(() => {
    for (const session of sessions) session.destroy();
    server.close();
  });
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, sessions, server, streamClosed };
}

/** Answers two SSE chunks and holds the stream open. */
const holdOpen = (stream: ServerHttp2Stream): void => {
  stream.respond({ ":status": 200, "content-type": "text/event-stream", "x-request-id": "r1" });
  stream.write("data: one\n\n");
  stream.write("data: two\n\n");
};

async function readUntil(response: Response, marker: string): Promise<string> {
  let received = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Buffer>) {
    received += chunk.toString();
    if (received.includes(marker)) break;
  }
  return received;
}

describe("nodeHttp2Fetch", () => {
  it("sends method, headers and body, answers status and headers, streams the body, and runs every request on one connection", async () => {
    const server = await h2cServer(holdOpen);
    const first = await nodeHttp2Fetch(`${server.origin}/v1/x?y=1`, { method: "POST", headers: { authorization: "Bearer k", connection: "keep-alive" }, body: '{"a":1}' });
    expect(first.ok).toBe(true);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-request-id")).toBe("r1");
    expect(await readUntil(first, "two")).toBe("data: one\n\ndata: two\n\n");
    const second = await nodeHttp2Fetch(`${server.origin}/v1/x`, { method: "POST", body: new TextEncoder().encode("{}") });
    expect(await readUntil(second, "two")).toContain("one");
    expect(server.requests).toEqual([
      { method: "POST", path: "/v1/x?y=1", body: '{"a":1}', authorization: "Bearer k" },
      { method: "POST", path: "/v1/x", body: "{}", authorization: undefined },
    ]);
    expect(server.sessions).toHaveLength(1);
  });

  it("an abort while the body is read errors the read with an AbortError and cancels the stream; the connection serves the next request", async () => {
    const server = await h2cServer(holdOpen);
    const controller = new AbortController();
    const response = await nodeHttp2Fetch(`${server.origin}/a`, { signal: controller.signal });
    const reading = (async () => {
      for await (const chunk of response.body as unknown as AsyncIterable<Buffer>) if (chunk.toString().includes("two")) controller.abort();
    })();
    await expect(reading).rejects.toMatchObject({ name: "AbortError" });
    expect(await server.streamClosed).toBe(constants.NGHTTP2_CANCEL);
    const next = await nodeHttp2Fetch(`${server.origin}/b`);
    expect(await readUntil(next, "two")).toContain("two");
    expect(server.sessions).toHaveLength(1);
  });

  it("an abort before the answer rejects with an AbortError; an aborted signal rejects at once", async () => {
    const controller = new AbortController();
    const server = await h2cServer(() => controller.abort());
    await expect(nodeHttp2Fetch(`${server.origin}/a`, { signal: controller.signal })).rejects.toMatchObject({ name: "AbortError" });
    await expect(nodeHttp2Fetch(`${server.origin}/b`, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
  });

  it("a stream reset, or a connection dropped, before the answer rejects as a dropped connection instead of waiting forever", async () => {
    const cancelling = await h2cServer((stream) => stream.close(constants.NGHTTP2_CANCEL));
    await expect(nodeHttp2Fetch(`${cancelling.origin}/a`)).rejects.toMatchObject({ code: "ECONNRESET" });
    const resetting = await h2cServer((stream) => stream.close(constants.NGHTTP2_NO_ERROR));
    await expect(nodeHttp2Fetch(`${resetting.origin}/a`)).rejects.toMatchObject({ code: "ECONNRESET" });
    const dropping = await h2cServer((stream) => stream.session?.destroy());
    await expect(nodeHttp2Fetch(`${dropping.origin}/a`)).rejects.toThrow();
  });

  it("a body cut off by a dropped connection errors its reader instead of ending as if whole", async () => {
    const server = await h2cServer(holdOpen);
    const response = await nodeHttp2Fetch(`${server.origin}/a`);
    const reading = (async () => {
      let received = "";
      for await (const chunk of response.body as unknown as AsyncIterable<Buffer>) {
        received += chunk.toString();
        if (received.includes("two")) for (const session of server.sessions) session.destroy();
      }
    })();
    await expect(reading).rejects.toThrow(/closed before its end/);
  });

  it("a refused connection rejects", async () => {
    const server = await h2cServer(holdOpen);
    const { origin } = server;
    server.server.close();
    for (const session of server.sessions) session.destroy();
    await once(server.server, "close");
    await expect(nodeHttp2Fetch(`${origin}/a`)).rejects.toThrow();
  });

  it("opens another connection when one carries as many streams as the server allows, so no stream waits", async () => {
    const server = await h2cServer(holdOpen, { maxConcurrentStreams: 2 });
    // The first answer comes after the server's SETTINGS, so its limit is known from then on.
    const streams = [await nodeHttp2Fetch(`${server.origin}/0`)];
    for (const index of [1, 2, 3]) streams.push(await nodeHttp2Fetch(`${server.origin}/${String(index)}`));
    for (const response of streams) expect(await readUntil(response, "two")).toContain("two");
    expect(server.sessions).toHaveLength(2);
  });

  it("after the server closes the connection (GOAWAY), the next request opens a new one", async () => {
    const server = await h2cServer((stream) => stream.respond({ ":status": 204 }, { endStream: true }));
    expect((await nodeHttp2Fetch(`${server.origin}/a`)).status).toBe(204);
    const [session] = server.sessions;
    session?.close();
    if (session) await once(session, "close");
    expect((await nodeHttp2Fetch(`${server.origin}/b`)).status).toBe(204);
    expect(server.sessions).toHaveLength(2);
  });

  it("carries the openai SDK: a streamed reply reaches the adapter's events, and an error status its error classes", async () => {
    const chunk = (delta: object, finish: string | null = null): string => `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const server = await h2cServer((stream, request) => {
      if (request.body.includes("refuse")) {
        stream.respond({ ":status": 400, "content-type": "application/json" });
        stream.end(JSON.stringify({ error: { message: "no", type: "invalid_request_error", param: null, code: null } }));
        return;
      }
      stream.respond({ ":status": 200, "content-type": "text/event-stream" });
      stream.end(`${chunk({ role: "assistant", content: "" })}${chunk({ content: "Hello" })}${chunk({ content: " there" })}${chunk({}, "stop")}data: [DONE]\n\n`);
    });
    const provider = createOpenAiProvider({ apiKey: "k", baseUrl: `${server.origin}/v1`, idleTimeoutMs: 5_000, http2: true });
    const events: unknown[] = [];
    for await (const event of provider.stream({ model: "m", messages: [{ role: "user", content: "hi" }] }, new AbortController().signal)) events.push(event);
    expect(events).toEqual([
      { type: "text-delta", delta: "Hello" },
      { type: "text-delta", delta: " there" },
      { type: "finish", reason: "stop" },
    ]);
    const refused = (async () => {
      for await (const _event of provider.stream({ model: "m", messages: [{ role: "user", content: "refuse" }] }, new AbortController().signal)) continue;
    })();
    await expect(refused).rejects.toMatchObject({ kind: "bad-request" });
    expect(server.requests[0]?.path).toBe("/v1/chat/completions");
  });
});
