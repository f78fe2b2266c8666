/**
 * RELIABILITY.md fault 4 with the shipped lock settings: a worker SIGKILLed mid-reply, for each
 * provider kind. Where the provider continues a reply (the simulated model, Anthropic's prefill,
 * an OpenAI-compatible server with OPENAI_CONTINUE_REPLIES) viewers see `continue` and only the
 * rest of the reply, no `reset`; where it does not (OPENAI_CONTINUE_REPLIES off), `reset` and the
 * whole reply again. Either way the next attempt begins within 10 s of the kill (PROTOCOL.md
 * 4.3), the text viewers end with is the saved message, and a viewer that resumes with its cursor
 * across the takeover gets every entry once.
 *
 * Each kind runs on its own API and two worker processes: the one that takes the reply is killed,
 * the other (already running, so its start-up is not measured) takes the job over.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SluiceProcess } from "../support/sluice/sluice-process.ts";
import { startFakeAnthropicServer } from "../support/providers/fake-anthropic-server.ts";
import { startFakeOpenAiServer } from "../support/providers/fake-openai-server.ts";
import type { FakeProviderServer } from "../support/providers/fake-provider-script.ts";
import { createStreamRecorder, type StreamRecorder, type TaskReport } from "../support/client/stream-recorder.ts";
import { registerUser, waitForFinalReply } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

/** PROTOCOL.md 4.3: the next attempt begins within this long of a crash with the default settings. */
const takeoverLimitMs = 10_000;

interface Kind {
  label: string;
  env: (fake: FakeProviderServer | undefined) => Record<string, string>;
  fake?: () => Promise<FakeProviderServer>;
  /** The prompt to send and the reply it must produce. */
  prompt: (fake: FakeProviderServer | undefined) => { prompt: string; expected: string };
  /** `continue` or `reset`: how the next attempt begins. */
  begins: "continue" | "reset";
}

// Replies of about 8 s, so the kill lands mid-reply and the takeover (up to 7.5 s) finds text to continue.
const slowFake = (start: typeof startFakeOpenAiServer) => () => start({ mode: "slow", slowTokenDelayMs: 40, tokenCount: 200, seed: 11 });
const fakeReply = (fake: FakeProviderServer | undefined) => ({ prompt: "A long answer, please", expected: fake?.expectedText() ?? "" });

const kinds: Kind[] = [
  {
    label: "simulated",
    env: () => ({ LLM_PROVIDER: "simulated", SIMULATED_TOKENS_PER_SECOND: "40" }),
    prompt: () => echoPrompt(seededRandom(16), 220),
    begins: "continue",
  },
  {
    label: "anthropic",
    fake: slowFake(startFakeAnthropicServer),
    env: (fake) => ({ LLM_PROVIDER: "anthropic", ANTHROPIC_API_KEY: "sk-ant-fake", ANTHROPIC_BASE_URL: fake?.url ?? "", LLM_MODEL: "fake-slow" }),
    prompt: fakeReply,
    begins: "continue",
  },
  {
    label: "openai-compatible",
    fake: slowFake(startFakeOpenAiServer),
    env: (fake) => ({ LLM_PROVIDER: "openai", OPENAI_API_KEY: "sk-fake", OPENAI_BASE_URL: fake?.url ?? "", LLM_MODEL: "fake-slow", OPENAI_CONTINUE_REPLIES: "true" }),
    prompt: fakeReply,
    begins: "continue",
  },
  {
    label: "openai-compatible, continuation off",
    fake: slowFake(startFakeOpenAiServer),
    env: (fake) => ({ LLM_PROVIDER: "openai", OPENAI_API_KEY: "sk-fake", OPENAI_BASE_URL: fake?.url ?? "", LLM_MODEL: "fake-slow", OPENAI_CONTINUE_REPLIES: "false" }),
    prompt: fakeReply,
    begins: "reset",
  },
];

describe.each(kinds)("a worker killed mid-reply ($label)", (kind) => {
  let fake: FakeProviderServer | undefined;
  let cluster: ProcessSluice;

  beforeAll(async () => {
    fake = await kind.fake?.();
    // "shipped": the product's own lock and stalled-check settings, which the 10 s promise is about.
    cluster = await startSluice({ mode: "processes", topology: { apis: 1, workers: 2 }, recovery: "shipped", label: "continue", env: kind.env(fake) });
  }, clusterStartTimeoutMs);
  afterAll(async () => {
    await cluster?.stop();
    await fake?.close();
  });

  it(`the next attempt begins with \`${kind.begins}\` within 10 s; viewers end with the saved reply, every entry once`, async () => {
    const { prompt, expected } = kind.prompt(fake);
    const session = await registerUser(cluster.url, "continue");
    const conversationId = (await session.createConversation()).id;
    const accepted = await session.send(conversationId, prompt);
    const { taskId } = accepted;

    // Viewer A reads throughout; viewer B drops early and resumes with its cursor once the takeover happened.
    const steady = createStreamRecorder(session);
    const resumer = createStreamRecorder(session);
    const begun = (recorder: StreamRecorder) => recorder.events.some((event) => event.taskId === taskId && event.type === kind.begins);
    const following = steady.follow(taskId, () => ({ idleTimeoutMs: 60_000 }), { deadlineMs: 90_000 });
    const resuming = resumer.follow(
      taskId,
      async (connection) => {
        if (connection === 0) return { abortAfterEvents: 3 };
        await expect.poll(() => begun(steady), { timeout: 60_000, interval: 50, message: "the next attempt to begin" }).toBe(true);
        return { idleTimeoutMs: 60_000 };
      },
      { deadlineMs: 90_000 },
    );

    let victim: SluiceProcess | undefined;
    await expect.poll(() => {
      victim = cluster.workers.find((worker) => worker.output().includes(taskId) && worker.output().includes("first chunk received"));
      return victim !== undefined && steady.report(taskId).text.length > 20;
    }, { timeout: 30_000, interval: 50, message: "a worker to stream the reply" }).toBe(true);
    if (!victim) throw new Error("no worker ran the task");
    victim.kill("SIGKILL");
    const killedAt = Date.now();
    const seenAtKill = steady.report(taskId).text;

    const report = await following;
    const resumed = await resuming;
    const begin = steady.events.find((event) => event.taskId === taskId && event.type === kind.begins);
    const takeoverMs = (begin?.at ?? Number.NaN) - killedAt;
    const saved = await waitForFinalReply(session, conversationId, taskId);
    const context = `${kind.label}: ${JSON.stringify({ report: { ...report, text: undefined }, resumed: { ...resumed, text: undefined }, takeoverMs, seenAtKill: seenAtKill.length })}\n${cluster.output().slice(-4_000)}`;

    expect(takeoverMs, context).toBeLessThan(takeoverLimitMs);
    expect(begin?.data, context).toMatchObject({ type: kind.begins, attempt: 2 });
    for (const viewer of [report, resumed]) {
      expect(viewer, context).toMatchObject<Partial<TaskReport>>({ ends: 1, endStatus: "completed", lost: 0, duplicated: 0, outOfOrder: 0 });
      expect(viewer.text, context).toBe(expected);
    }
    expect(saved.status, context).toBe("completed");
    expect(saved.content, context).toBe(expected);

    const own = steady.events.filter((event) => event.taskId === taskId);
    const beginAt = begin ? own.indexOf(begin) : -1;
    expect(beginAt, context).toBeGreaterThan(0);
    const textBefore = own.slice(0, beginAt).map((event) => (event.type === "text-delta" ? String(event.data.delta) : "")).join("");
    const textAfter = own.slice(beginAt).map((event) => (event.type === "text-delta" ? String(event.data.delta) : "")).join("");
    expect(textBefore.length, context).toBeGreaterThan(0);
    if (kind.begins === "continue") {
      // No restart: the kept text and then only the rest, each piece of the reply once.
      expect(report.resets, context).toBe(0);
      expect(own.some((event) => event.type === "reset"), context).toBe(false);
      expect(textBefore + textAfter, context).toBe(expected);
    } else {
      // A restart: `reset`, then the whole reply again.
      expect(report.resets, context).toBe(1);
      expect(textAfter, context).toBe(expected);
    }
  }, 150_000);
});
