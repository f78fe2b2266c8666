import { APIError } from "openai";
import { describe, expect, it } from "vitest";
import { openAiStreamChunks } from "./openai-stream-chunks.ts";

/** A Response whose body arrives in exactly these reads (an array is iterable, as the body must be). */
function responseOf(reads: Array<string | Uint8Array>): Response {
  const body = reads.map((read) => (typeof read === "string" ? new TextEncoder().encode(read) : read));
  return { body, headers: new Headers() } as unknown as Response;
}

async function batchesOf(reads: Array<string | Uint8Array>): Promise<unknown[][]> {
  const batches: unknown[][] = [];
  for await (const batch of openAiStreamChunks(responseOf(reads))) batches.push(batch);
  return batches;
}

const chunk = (content: string): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
const contentOf = (batches: unknown[][]): string[][] =>
  batches.map((batch) => batch.map((item) => (item as { choices: Array<{ delta: { content: string } }> }).choices[0]?.delta.content ?? ""));

describe("openAiStreamChunks", () => {
  it("yields the chunks of one read together, in order, and nothing after [DONE]", async () => {
    const batches = await batchesOf([chunk("a") + chunk("b"), chunk("c"), `data: [DONE]\n\n${chunk("after")}`]);
    expect(contentOf(batches)).toEqual([["a", "b"], ["c"]]);
  });

  it("joins an event and a UTF-8 character split across reads", async () => {
    const bytes = new TextEncoder().encode(chunk("héllo wörld €"));
    const cut = bytes.indexOf(0xe2) + 1; // inside the three bytes of "€"
    const batches = await batchesOf([bytes.slice(0, 7), bytes.slice(7, cut), bytes.slice(cut)]);
    expect(contentOf(batches)).toEqual([["héllo wörld €"]]);
  });

  it("drops an event cut off by the end of the body (no blank line after it)", async () => {
    const batches = await batchesOf([chunk("whole"), `data: ${JSON.stringify({ choices: [] })}`]);
    expect(contentOf(batches)).toEqual([["whole"]]);
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

  it("throws a SyntaxError for data that is not JSON", async () => {
    await expect(batchesOf(["data: {not json\n\n"])).rejects.toBeInstanceOf(SyntaxError);
  });
});
