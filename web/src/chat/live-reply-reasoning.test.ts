import { describe, expect, test } from "vitest";
import { applyStreamEvent, createLiveReply, liveReasoningDurationMs, type LiveReply, type StreamEvent } from "./live-reply.ts";
import { formatDuration } from "./reasoning-view.tsx";

const at = (receivedAtMs: number, type: string, id: string, data: unknown = {}): StreamEvent => ({ type, id, data, receivedAtMs });
const reasoning = (receivedAtMs: number, id: string, delta: string) => at(receivedAtMs, "reasoning-delta", id, { delta });
const text = (receivedAtMs: number, id: string, delta: string) => at(receivedAtMs, "text-delta", id, { delta });

function applyAll(events: readonly StreamEvent[], reply: LiveReply = createLiveReply("m1", "t1")): LiveReply {
  return events.reduce((current, event) => applyStreamEvent(current, event), reply);
}

describe("reasoning in the live reply", () => {
  test("reasoning-delta builds the reasoning apart from the text; its duration runs from the first reasoning delta to the answer's first", () => {
    const reply = applyAll([at(0, "start", "1"), reasoning(1_000, "2", "Let me "), reasoning(2_500, "3", "think."), text(4_000, "4", "Answer"), text(9_000, "5", ".")]);
    expect(reply.reasoning).toBe("Let me think.");
    expect(reply.text).toBe("Answer.");
    expect(liveReasoningDurationMs(reply)).toBe(3_000);
  });

  test("while no answer has come, the duration is up to the last reasoning delta; without reasoning it is null", () => {
    const thinking = applyAll([at(0, "start", "1"), reasoning(1_000, "2", "a"), reasoning(1_700, "3", "b")]);
    expect(liveReasoningDurationMs(thinking)).toBe(700);
    expect(thinking.text).toBe("");
    expect(liveReasoningDurationMs(applyAll([at(0, "start", "1"), text(5, "2", "x")]))).toBeNull();
  });

  test("a replayed reasoning delta (same id) is applied once; `reset` discards the reasoning with the text", () => {
    const first = applyAll([at(0, "start", "1"), reasoning(10, "2", "once")]);
    expect(applyAll([reasoning(20, "2", "once"), reasoning(30, "3", " more")], first).reasoning).toBe("once more");
    const reset = applyAll([at(40, "reset", "4", { attempt: 2, reason: "retry" })], first);
    expect(reset.reasoning).toBe("");
    expect(liveReasoningDurationMs(reset)).toBeNull();
    expect(applyAll([reasoning(50, "5", "again")], reset).reasoning).toBe("again");
  });
});

describe("formatDuration", () => {
  test("says short and long durations the way a reader expects", () => {
    expect(formatDuration(300)).toBe("under a second");
    expect(formatDuration(4_400)).toBe("4 s");
    expect(formatDuration(125_000)).toBe("2 min 5 s");
    expect(formatDuration(120_000)).toBe("2 min");
  });
});
