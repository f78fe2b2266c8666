import { describe, expect, it, onTestFinished } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import type { ChatRequest, LlmProvider, ProviderEvent } from "../llm/llm-provider.ts";
import { ProviderError } from "../llm/provider-error.ts";
import type { FinalResult } from "../storage/messages-repository.ts";
import { createStreamLog } from "../streaming/index.ts";
import type { LogEntry } from "../streaming/events.ts";
import { systemClock } from "../time/clock.ts";
import { createGenerationJob } from "./generation-job.ts";
import { fakeMessagesRepository, fixedJobSettings, pendingTaskJob, pendingTaskRow } from "./generation-job-fakes.ts";

// PROTOCOL.md 4.3: a worker that takes over a crashed reply continues it (`continue`, only the
// rest) when its provider can, and restarts it (`reset`, the whole reply) when it cannot.
// Against a real Redis log; the crash is a first run paused mid-reply while a second run of the
// same task takes it over (what BullMQ does once the first worker's lock lapses), and the first,
// released, is the zombie. PostgreSQL is a stand-in with the real repository's attempt fencing.

/**
 * Streams `reasoning` then `text` chunks. Its first call waits for `gate` before the chunk at
 * `pauseAt` (counting reasoning chunks first). With `continues`, a request's `continueFrom` gets
 * only the rest of the text, as a real continuing provider streams it.
 */
function scriptedProvider(script: { reasoning?: string[]; text: string[]; continues: boolean; pauseAt: number; gate: Promise<void>; refusesContinuation?: boolean }) {
  const requests: ChatRequest[] = [];
  const provider: LlmProvider & { requests: ChatRequest[] } = {
    name: "simulated",
    continuesReplies: script.continues,
    requests,
    async *stream(request: ChatRequest, signal: AbortSignal): AsyncIterable<ProviderEvent> {
      requests.push(request);
      const first = requests.length === 1;
      // A server without continue_final_message answers the continuation request 400.
      if (request.continueFrom && script.refusesContinuation) throw new ProviderError("bad-request", { message: "continue_final_message is not supported" });
      const whole = script.text.join("");
      const events: ProviderEvent[] = request.continueFrom
        ? [{ type: "text-delta", delta: whole.slice(request.continueFrom.length) }]
        : [...(script.reasoning ?? []).map((delta) => ({ type: "reasoning-delta" as const, delta })), ...script.text.map((delta) => ({ type: "text-delta" as const, delta }))];
      if (request.continueFrom && !whole.startsWith(request.continueFrom)) throw new Error(`cannot continue ${JSON.stringify(request.continueFrom)}`);
      for (const [index, event] of events.entries()) {
        if (first && index === script.pauseAt) await script.gate;
        if (signal.aborted) throw new Error("aborted");
        yield event;
      }
      yield { type: "usage", inputTokens: 1, outputTokens: events.length };
    },
  };
  return provider;
}

function setup(provider: LlmProvider, onFinish?: () => Promise<void>) {
  const redis = connectTestRedis();
  const streamLog = createStreamLog({ redis, keyPrefix: uniqueKeyPrefix("continue") });
  const row = pendingTaskRow();
  const run = createGenerationJob({
    streamLog,
    messages: fakeMessagesRepository(row, { onFinish }),
    provider,
    ...fixedJobSettings,
    clock: systemClock,
  });
  const { taskId } = pendingTaskJob;
  onTestFinished(() => streamLog.remove(taskId));
  const entries = async (): Promise<LogEntry[]> => (await streamLog.read(taskId, 0, 1_000))?.entries ?? [];
  const until = async (condition: (entries: LogEntry[]) => boolean, what: string): Promise<void> => {
    for (const deadline = Date.now() + 10_000; !condition(await entries()); ) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { run: () => run(pendingTaskJob), row, entries, until, streamLog, taskId };
}

/** What a viewer reading the whole log ends up with (PROTOCOL.md 3.2). */
function viewerReply(entries: readonly LogEntry[]): { text: string; reasoning: string } {
  let text = "";
  let reasoning = "";
  for (const { event } of entries) {
    if (event.type === "start" || event.type === "reset") {
      text = "";
      reasoning = "";
    } else if (event.type === "text-delta") text += event.delta;
    else if (event.type === "reasoning-delta") reasoning += event.delta;
  }
  return { text, reasoning };
}

const textOf = (entries: readonly LogEntry[]): string => entries.map(({ event }) => (event.type === "text-delta" ? event.delta : "")).join("");
const types = (entries: readonly LogEntry[]): string[] => entries.map(({ event }) => event.type);

/** Runs the first attempt until `ready` holds, takes the task over with a second run, then releases the first as a zombie. */
async function crashAndTakeOver(job: ReturnType<typeof setup>, ready: (entries: LogEntry[]) => boolean, release: () => void) {
  const crashed = job.run();
  await job.until(ready, "the first attempt's deltas");
  const takeover = await job.run();
  release();
  return { takeover, zombie: await crashed };
}

describe("a reply taken over after its worker died", () => {
  it("continues where the provider can: `continue`, only the rest, the whole reply saved once, and the zombie refused", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = scriptedProvider({ text: ["The quick ", "brown fox ", "jumps over ", "the lazy dog."], continues: true, pauseAt: 2, gate });
    const job = setup(provider);
    const { takeover, zombie } = await crashAndTakeOver(job, (entries) => textOf(entries) === "The quick brown fox ", release);
    expect([takeover, zombie]).toEqual(["done", "done"]);

    expect(provider.requests[1]?.continueFrom).toBe("The quick brown fox ");
    const entries = await job.entries();
    expect(types(entries)).not.toContain("reset");
    expect(entries.find(({ event }) => event.type === "continue")?.event).toEqual({ type: "continue", attempt: 2, model: "sim" });
    // Each chunk once: the kept text before `continue`, only the rest after it, nothing of the zombie.
    const continueAt = types(entries).indexOf("continue");
    expect(textOf(entries.slice(0, continueAt))).toBe("The quick brown fox ");
    expect(textOf(entries.slice(continueAt))).toBe("jumps over the lazy dog.");
    expect(viewerReply(entries).text).toBe("The quick brown fox jumps over the lazy dog.");
    expect(row(job)).toMatchObject({ status: "completed", content: "The quick brown fox jumps over the lazy dog.", attempt: 2 });
    expect(entries.filter(({ event }) => event.type === "end")).toHaveLength(1);
    expect(entries.at(-1)?.event).toMatchObject({ type: "end", status: "completed", messageId: "m1" });
  });

  it("restarts when the provider refuses the continuation request: `continue`, then `reset` and the whole reply, saved once", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = scriptedProvider({ text: ["one ", "two ", "three"], continues: true, refusesContinuation: true, pauseAt: 1, gate });
    const job = setup(provider);
    const { takeover, zombie } = await crashAndTakeOver(job, (entries) => textOf(entries) === "one ", release);
    expect([takeover, zombie]).toEqual(["done", "done"]);

    expect(provider.requests.map((request) => request.continueFrom)).toEqual([undefined, "one ", undefined]);
    const entries = await job.entries();
    expect(entries.find(({ event }) => event.type === "continue")?.event).toMatchObject({ type: "continue", attempt: 2 });
    const resetAt = types(entries).indexOf("reset");
    expect(resetAt).toBeGreaterThan(types(entries).indexOf("continue"));
    expect(entries[resetAt]?.event).toMatchObject({ type: "reset", attempt: 3 });
    expect(textOf(entries.slice(resetAt))).toBe("one two three");
    expect(viewerReply(entries).text).toBe("one two three");
    expect(row(job)).toMatchObject({ status: "completed", content: "one two three", attempt: 3 });
    expect(entries.filter(({ event }) => event.type === "end")).toHaveLength(1);
  });

  it("restarts where it cannot: `reset`, then the whole reply, saved once", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = scriptedProvider({ text: ["one ", "two ", "three"], continues: false, pauseAt: 1, gate });
    const job = setup(provider);
    await crashAndTakeOver(job, (entries) => textOf(entries) === "one ", release);

    expect(provider.requests[1]?.continueFrom).toBeUndefined();
    const entries = await job.entries();
    expect(types(entries)).not.toContain("continue");
    const resetAt = types(entries).indexOf("reset");
    expect(entries[resetAt]?.event).toMatchObject({ type: "reset", attempt: 2, reason: "retry" });
    expect(textOf(entries.slice(resetAt))).toBe("one two three");
    expect(viewerReply(entries).text).toBe("one two three");
    expect(row(job)).toMatchObject({ status: "completed", content: "one two three", attempt: 2 });
  });

  it("keeps the reasoning streamed before the crash and continues the text; the saved reasoning is the kept one", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = scriptedProvider({ reasoning: ["Let me ", "think."], text: ["Answer: ", "forty-two."], continues: true, pauseAt: 3, gate });
    const job = setup(provider);
    await crashAndTakeOver(job, (entries) => textOf(entries) === "Answer: ", release);

    const entries = await job.entries();
    expect(types(entries)).toContain("continue");
    expect(types(entries)).not.toContain("reset");
    expect(viewerReply(entries)).toEqual({ text: "Answer: forty-two.", reasoning: "Let me think." });
    expect(row(job)).toMatchObject({ content: "Answer: forty-two.", reasoning: "Let me think." });
  });

  it("a crash while the model was only thinking restarts the reply: `continue` is followed at once by `reset`", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = scriptedProvider({ reasoning: ["Let me ", "think."], text: ["Answer."], continues: true, pauseAt: 1, gate });
    const job = setup(provider);
    await crashAndTakeOver(job, (entries) => viewerReply(entries).reasoning === "Let me ", release);

    expect(provider.requests[1]?.continueFrom).toBeUndefined();
    const entries = await job.entries();
    expect(types(entries).filter((type) => type === "continue" || type === "reset")).toEqual(["continue", "reset"]);
    expect(viewerReply(entries)).toEqual({ text: "Answer.", reasoning: "Let me think." });
    expect(row(job)).toMatchObject({ content: "Answer.", reasoning: "Let me think.", attempt: 3 });
  });

  it("a reply saved but not ended by the crashed attempt: the taker ends it after `continue` without sending the text again", async () => {
    let saved = (): void => undefined;
    const savedOnce = new Promise<void>((resolve) => (saved = resolve));
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = scriptedProvider({ text: ["saved ", "reply"], continues: true, pauseAt: -1, gate: Promise.resolve() });
    // The first attempt dies between its save and its `end` (held there until the takeover is done).
    let finishes = 0;
    const job = setup(provider, async () => {
      finishes += 1;
      saved();
      if (finishes === 1) await gate;
    });
    const crashed = job.run();
    await savedOnce;
    await expect(job.run()).resolves.toBe("done");
    release();
    await expect(crashed).resolves.toBe("done");

    const entries = await job.entries();
    expect(types(entries).slice(-2)).toEqual(["continue", "end"]);
    expect(entries.at(-1)?.event).toMatchObject({ type: "end", status: "completed", messageId: "m1" });
    expect(textOf(entries)).toBe("saved reply");
    expect(row(job)).toMatchObject({ content: "saved reply", attempt: 1 });
  });
});

function row(job: ReturnType<typeof setup>): (FinalResult & { attempt: number }) | undefined {
  return job.row.final;
}
