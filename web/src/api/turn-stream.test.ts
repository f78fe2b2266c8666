import { describe, expect, it } from "vitest";
import { isApiError, NETWORK_ERROR } from "./api-error.ts";
import { createApiClient } from "./create-api-client.ts";

const accepted = {
  userMessage: { id: "u1" },
  assistantMessage: { id: "a1", status: "pending" },
  taskId: "t1",
  streamUrl: "/api/stream/t1?token=r",
};

function clientAnswering(answer: Response): { api: ReturnType<typeof createApiClient>; accepts: string[] } {
  const accepts: string[] = [];
  const api = createApiClient({
    getToken: () => "sls_token",
    onUnauthenticated: () => undefined,
    fetch: (_input, init) => {
      accepts.push(new Headers(init?.headers).get("accept") ?? "");
      return Promise.resolve(answer);
    },
  });
  return { api, accepts };
}

const eventStream = (text: string): Response => new Response(text, { status: 200, headers: { "content-type": "text/event-stream; charset=utf-8" } });

describe("a POST that starts a generation, read as its stream (PROTOCOL.md 2.4)", () => {
  it("asks for the stream, answers the accepted body and hands on the log's events with their ids", async () => {
    const { api, accepts } = clientAnswering(
      eventStream(`retry: 1000\n\nevent: accepted\ndata: ${JSON.stringify({ type: "accepted", ...accepted })}\n\n: heartbeat\n\nid: 1-1\nevent: start\ndata: {"attempt":1}\n\nid: 1-2\nevent: text-delta\ndata: {"text":"Hi"}\n\n`),
    );
    const started = await api.sendMessage("c1", "hello");
    expect(accepts[0]).toContain("text/event-stream");
    expect(started.accepted).toEqual(accepted);
    const events = started.events;
    if (events === null) throw new Error("expected the stream");
    const first = await events.read();
    const second = await events.read();
    expect([first.value?.event, first.value?.id, second.value?.event, second.value?.id, second.value?.data]).toEqual(["start", "1-1", "text-delta", "1-2", '{"text":"Hi"}']);
    expect((await events.read()).done).toBe(true);
  });

  it("takes the plain 202 when the server answers JSON (no open-stream slot free)", async () => {
    const { api } = clientAnswering(new Response(JSON.stringify(accepted), { status: 202, headers: { "content-type": "application/json" } }));
    const started = await api.regenerate("c1");
    expect(started).toEqual({ accepted, events: null });
  });

  it("turns a refusal into the ApiError with the server's code, as a JSON request would", async () => {
    const { api } = clientAnswering(new Response(JSON.stringify({ error: { code: "GENERATION_IN_PROGRESS", message: "busy" } }), { status: 409, headers: { "content-type": "application/json" } }));
    const error: unknown = await api.editMessage("c1", "m1", "again").catch((caught: unknown) => caught);
    expect(isApiError(error) && error.code === "GENERATION_IN_PROGRESS" && error.status === 409).toBe(true);
  });

  it("reports an unreadable `accepted` as a network error and closes the connection (it holds an open-stream slot)", async () => {
    for (const data of ["{not json", JSON.stringify({ type: "accepted", taskId: "t1" })]) {
      // The cancel reaches the body through the decoder and parser pipes a few ticks later: awaited,
      // so a connection left open fails the test by its timeout.
      let bodyCancelled!: () => void;
      const cancelled = new Promise<void>((resolve) => (bodyCancelled = resolve));
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => controller.enqueue(new TextEncoder().encode(`event: accepted\ndata: ${data}\n\n`)),
        cancel: () => bodyCancelled(),
      });
      const { api } = clientAnswering(new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } }));
      const error: unknown = await api.sendMessage("c1", "hello").catch((caught: unknown) => caught);
      expect(isApiError(error) && error.code === NETWORK_ERROR).toBe(true);
      await cancelled;
    }
  });

  it("reports a stream that ends before `accepted` as a network error, as a lost 202 would be", async () => {
    const { api } = clientAnswering(eventStream("retry: 1000\n\n"));
    const error: unknown = await api.sendMessage("c1", "hello").catch((caught: unknown) => caught);
    expect(isApiError(error) && error.code === NETWORK_ERROR).toBe(true);
  });
});
