import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { nodeStreamFetch, providerIdleConnectionMs } from "./node-stream-fetch.ts";

/** A server that answers with two chunks, then holds the response open until the test ends. */
async function holdingServer(): Promise<{ url: string; requests: Array<{ method: string; body: string; authorization: string | undefined }> }> {
  const requests: Array<{ method: string; body: string; authorization: string | undefined }> = [];
  const open: ServerResponse[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      requests.push({ method: request.method ?? "", body, authorization: request.headers.authorization });
      response.writeHead(200, { "content-type": "text/event-stream", "x-request-id": "r1" });
      response.write("data: one\n\n");
      response.write("data: two\n\n");
      open.push(response);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  onTestFinished(() => {
    for (const response of open) response.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/x`, requests };
}

describe("nodeStreamFetch", () => {
  it("sends method, headers and body, answers status and headers, and streams the body as it arrives", async () => {
    const server = await holdingServer();
    const response = await nodeStreamFetch(server.url, { method: "POST", headers: { authorization: "Bearer k" }, body: '{"a":1}' });
    expect(response.ok).toBe(true);
    expect(response.headers.get("x-request-id")).toBe("r1");
    expect(server.requests).toEqual([{ method: "POST", body: '{"a":1}', authorization: "Bearer k" }]);
    let received = "";
    for await (const chunk of response.body as unknown as AsyncIterable<Buffer>) {
      received += chunk.toString();
      if (received.includes("two")) break;
    }
    expect(received).toBe("data: one\n\ndata: two\n\n");
  });

  it("an abort while the body is read errors the read with an AbortError and crashes nothing", async () => {
    const server = await holdingServer();
    const controller = new AbortController();
    const response = await nodeStreamFetch(server.url, { signal: controller.signal });
    const reading = (async () => {
      for await (const chunk of response.body as unknown as AsyncIterable<Buffer>) if (chunk.toString().includes("two")) controller.abort();
    })();
    await expect(reading).rejects.toMatchObject({ name: "AbortError" });
  });

  it("an abort before the answer rejects with an AbortError; an aborted signal rejects at once", async () => {
    const controller = new AbortController();
    const server = createServer(() => controller.abort());
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(() => void server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    await expect(nodeStreamFetch(url, { signal: controller.signal })).rejects.toMatchObject({ name: "AbortError" });
    await expect(nodeStreamFetch(url, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
  });

  it("a refused connection rejects like fetch", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    server.close();
    await once(server, "close");
    await expect(nodeStreamFetch(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("keeps a provider connection open, idle, for 30 s (Node's global agent: 5 s), or as long as the server says if shorter", async () => {
    const idleTimeoutOfFreeSocket = async (serverKeepAliveSeconds: number): Promise<number> => {
      const server = createServer((_request, response) => response.end("ok"));
      server.keepAliveTimeout = serverKeepAliveSeconds * 1000;
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      onTestFinished(() => {
        server.closeAllConnections();
        server.close();
      });
      const response = await nodeStreamFetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const socket = (response.body as unknown as IncomingMessage).socket;
      // Back in the agent's pool once the response is read: its idle timer is set then.
      const freed = once(socket, "free");
      expect(await response.text()).toBe("ok");
      await freed;
      return socket.timeout ?? 0;
    };
    expect(providerIdleConnectionMs).toBe(30_000);
    // The server sends "Keep-Alive: timeout=<s>"; Node's agent closes a second before it.
    expect(await idleTimeoutOfFreeSocket(120)).toBe(providerIdleConnectionMs);
    expect(await idleTimeoutOfFreeSocket(10)).toBe(9_000);
  });
});
