import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { guardProviderStream } from "./guard-provider-stream.ts";
import type { ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";
import { createStorableText, toStorableText } from "./storable-text.ts";

describe("storable provider text", () => {
  it("replaces U+0000 and lone surrogates with U+FFFD and keeps pairs, also split across deltas", () => {
    expect(toStorableText("a\u0000b\ud800c\udc00🚀")).toBe("a\uFFFDb\uFFFDc\uFFFD🚀");
    const text = createStorableText();
    const pieces = ["x\ud83d", "\ude80y", "\ud83d", "z", "\ud83d"].map((delta) => text.push(delta));
    expect(pieces).toEqual(["x", "\ud83d\ude80y", "", "\uFFFDz", ""]);
    expect(text.flush()).toBe("\uFFFD");
    expect(text.flush()).toBe("");
  });

  it("guardProviderStream yields only storable deltas, and what a held-back surrogate became before finish", async () => {
    const events: ProviderEvent[] = [
      { type: "text-delta", delta: "a\u0000" },
      { type: "text-delta", delta: "\ud83d" },
      { type: "usage", inputTokens: 1, outputTokens: 2 },
      { type: "text-delta", delta: "\ude80" },
      { type: "text-delta", delta: "end\ud800" },
      { type: "text-delta", delta: "\ud83d" },
      { type: "finish", reason: "stop" },
    ];
    const seen: ProviderEvent[] = [];
    const stream = guardProviderStream(
      () => Readable.from(events.map((event) => [event])),
      { signal: new AbortController().signal, idleTimeoutMs: 1_000, classifyError: (error) => new ProviderError("server", { message: String(error) }) },
    );
    for await (const event of stream) seen.push(event);
    const text = seen.flatMap((event) => (event.type === "text-delta" ? [event.delta] : [])).join("");
    expect(text).toBe("a\uFFFD🚀end\uFFFD\uFFFD");
    expect(text.isWellFormed()).toBe(true);
    expect(seen.at(-1)).toEqual({ type: "finish", reason: "stop" });
    expect(seen.filter((event) => event.type === "usage")).toHaveLength(1);
  });
});
