import { APIError } from "openai";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { ProviderEvent } from "./llm-provider.ts";
import { openAiStreamEvents } from "./openai-stream-events.ts";

/** A Response whose body arrives in exactly these reads (an array is iterable, as the body must be). */
function responseOf(reads: Array<string | Uint8Array> | PassThrough): Response {
  const body = Array.isArray(reads) ? reads.map((read) => (typeof read === "string" ? new TextEncoder().encode(read) : read)) : reads;
  return { body, headers: new Headers() } as unknown as Response;
}

async function batchesOf(reads: Array<string | Uint8Array>, signal?: AbortSignal): Promise<ProviderEvent[][]> {
  const batches: ProviderEvent[][] = [];
  for await (const batch of openAiStreamEvents(responseOf(reads), signal)) batches.push(batch);
  return batches;
}

const chunk = (content: string, finish?: string): string =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, ...(finish ? { finish_reason: finish } : {}) }] })}\n\n`;
const usage = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } })}\n\n`;
const done = "data: [DONE]\n\n";
const text = (delta: string): ProviderEvent => ({ type: "text-delta", delta });
const finish: ProviderEvent = { type: "finish", reason: "stop" };

describe("openAiStreamEvents", () => {
  it("yields the events of one read together, in order, usage and finish last, and nothing after [DONE]", async () => {
    const body = new PassThrough();
    const events = openAiStreamEvents(responseOf(body));
    body.write(chunk("a") + chunk("b"));
    expect(await events.next()).toEqual({ done: false, value: [text("a"), text("b")] });
    body.write(chunk("c"));
    expect(await events.next()).toEqual({ done: false, value: [text("c")] });
    body.write(chunk("", "stop") + usage);
    body.end(`${done}${chunk("after")}`);
    expect(await events.next()).toEqual({ done: false, value: [{ type: "usage", inputTokens: 3, outputTokens: 4 }, finish] });
    expect(await events.next()).toEqual({ done: true, value: undefined });
  });

  it("gives the events of reads that arrived while the consumer was busy in one batch", async () => {
    const body = new PassThrough();
    const events = openAiStreamEvents(responseOf(body));
    body.write(chunk("a"));
    body.write(chunk("b"));
    // The body's data events run on the next ticks, all before this.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await events.next()).toEqual({ done: false, value: [text("a"), text("b")] });
    body.end(chunk("", "stop") + done);
    expect(await events.next()).toEqual({ done: false, value: [finish] });
  });

  it("joins an event and a UTF-8 character split across reads", async () => {
    const bytes = new TextEncoder().encode(chunk("héllo wörld €") + chunk("", "stop") + done);
    const cut = bytes.indexOf(0xe2) + 1; // inside the three bytes of "€"
    const batches = await batchesOf([bytes.slice(0, 7), bytes.slice(7, cut), bytes.slice(cut)]);
    expect(batches.flat()).toEqual([text("héllo wörld €"), finish]);
  });

  it("throws truncated for a stream without a finish_reason, and drops an event cut off by the body's end", async () => {
    const cutOff = `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}`;
    const seen: ProviderEvent[][] = [];
    const error = await (async () => {
      for await (const batch of openAiStreamEvents(responseOf([chunk("whole"), cutOff]))) seen.push(batch);
    })().catch((caught: unknown) => caught);
    expect(seen).toEqual([[text("whole")]]);
    expect(error).toMatchObject({ kind: "truncated" });
  });

  it("ends quietly, without truncated, when the request's signal aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    expect(await batchesOf([chunk("a")], controller.signal)).toEqual([[text("a")]]);
  });

  it("throws the SDK's APIError, without a status, for an error event or a chunk with an error field", async () => {
    for (const reads of [
      [chunk("a"), `event: error\ndata: ${JSON.stringify({ error: { message: "overloaded" } })}\n\n`],
      [chunk("a"), `data: ${JSON.stringify({ error: { message: "overloaded" } })}\n\n`],
    ]) {
      const error = await batchesOf(reads).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).status).toBeUndefined();
    }
  });

  it("throws a SyntaxError for data that is not JSON, and a server error for a chunk without choices", async () => {
    await expect(batchesOf(["data: {not json\n\n"])).rejects.toBeInstanceOf(SyntaxError);
    await expect(batchesOf([`data: ${JSON.stringify({ id: "x" })}\n\n`])).rejects.toMatchObject({ kind: "server" });
  });

  it("rejects with the body's error, and a body left open after [DONE] or by a consumer that stops is destroyed", async () => {
    const failing = new PassThrough();
    const failed = openAiStreamEvents(responseOf(failing)).next();
    failing.destroy(new Error("reset"));
    await expect(failed).rejects.toThrow("reset");

    const open = new PassThrough();
    const events = openAiStreamEvents(responseOf(open));
    open.write(chunk("a", "stop") + done);
    expect(await events.next()).toEqual({ done: false, value: [text("a"), finish] });
    expect(await events.next()).toEqual({ done: true, value: undefined });
    // It is destroyed on the tick after [DONE] (body-batches.ts); every tick runs before setImmediate.
    await new Promise((resolve) => setImmediate(resolve));
    expect(open.destroyed).toBe(true);

    const stopped = new PassThrough();
    const early = openAiStreamEvents(responseOf(stopped));
    stopped.write(chunk("a"));
    expect(await early.next()).toEqual({ done: false, value: [text("a")] });
    await early.return?.();
    expect(stopped.destroyed).toBe(true);
  });
});
