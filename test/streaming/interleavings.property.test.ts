/**
 * Property: whatever the interleaving of appends, retries, lost logs, dropped
 * notifications, joins, disconnects, full sockets and resumes, every viewer
 * receives a contiguous run of the log per connection (no gap, no duplicate,
 * in order, an explicit reset before any change of log), exactly one end
 * overall, and the text it builds by PROTOCOL.md 3.2 is the text of the last
 * attempt. Real Redis; the subscriber and the log reads are wrapped only to
 * drop notifications and delay reads.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCursor } from "../../src/streaming/cursor.ts";
import { createStreamHub, type HubViewer, type StreamHub } from "../../src/streaming/stream-hub.ts";
import type { StreamLog } from "../../src/streaming/stream-log.ts";
import { lossySubscriber, type LossySubscriber } from "../support/streaming/lossy-subscriber.ts";
import { createMemoryViewer, interpret, type MemoryViewer } from "../support/streaming/memory-viewer.ts";
import type { ParsedSseEvent } from "../support/streaming/sse-parser.ts";
import { createStreamingRig } from "../support/streaming/streaming-rig.ts";

type Operation =
  | { kind: "append"; deltas: string[] }
  | { kind: "retry" }
  | { kind: "lose-log" }
  | { kind: "join"; viewer: number }
  | { kind: "disconnect"; viewer: number }
  | { kind: "fill"; viewer: number }
  | { kind: "drain"; viewer: number }
  | { kind: "drop-notification" }
  | { kind: "pause"; milliseconds: number };

const viewerCount = 4;
const viewerIndex = fc.nat(viewerCount - 1);
const delta = fc.string({ unit: fc.constantFrom("a", "b", " ", "\n", "\r", "é", "🎉", "data: ", "\0"), maxLength: 5 });
const operation: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("append" as const), deltas: fc.array(delta, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "retry" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "lose-log" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("join" as const), viewer: viewerIndex }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("disconnect" as const), viewer: viewerIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("fill" as const), viewer: viewerIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drain" as const), viewer: viewerIndex }) },
  { weight: 2, arbitrary: fc.constant({ kind: "drop-notification" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("pause" as const), milliseconds: fc.integer({ min: 0, max: 12 }) }) },
);

const sleep = async (milliseconds: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, milliseconds));

interface Session {
  memory: MemoryViewer;
  handle: HubViewer | undefined;
  closeRequested: boolean;
  opened: Promise<void>;
}

interface ViewerModel {
  sessions: Session[];
  current: Session | undefined;
}

function allEvents(model: ViewerModel): ParsedSseEvent[] {
  return model.sessions.flatMap((session) => session.memory.parser.events);
}

function openSession(hub: StreamHub, taskId: string, model: ViewerModel): void {
  const events = allEvents(model);
  const lastId = events.at(-1)?.id;
  const memory = createMemoryViewer();
  const session: Session = { memory, handle: undefined, closeRequested: false, opened: Promise.resolve() };
  session.opened = (async () => {
    const opened = await hub.open({ taskId, after: lastId === undefined ? undefined : parseCursor(lastId), sink: memory.sink });
    if (opened.status === "finished") throw new Error("finished before its end was seen");
    session.handle = opened.viewer;
    // A disconnect that happened while joining: release at once, as serve-sse does.
    if (session.closeRequested) opened.viewer.close();
    else opened.viewer.start();
  })();
  model.sessions.push(session);
  model.current = session;
}

function isFinished(model: ViewerModel): boolean {
  return allEvents(model).at(-1)?.event === "end";
}

/** Checks one connection: consecutive seqs after its cursor, an explicit reset before a change of log. */
function checkSessions(model: ViewerModel): void {
  let cursor: { incarnation: string; seq: number } | undefined;
  for (const session of model.sessions) {
    for (const event of session.memory.parser.events) {
      const { incarnation, seq } = parseCursor(event.id ?? "");
      const data = JSON.parse(event.data) as { type: string; reason?: string };
      if (data.type === "reset" && data.reason === "log-replaced") {
        expect(seq).toBe(0);
      } else if (cursor?.incarnation === incarnation) {
        expect(seq).toBe(cursor.seq + 1);
      } else {
        expect(cursor).toBeUndefined();
        expect(seq).toBe(1);
      }
      cursor = { incarnation, seq };
    }
  }
}

async function runScenario(rig: { log: StreamLog; hub: StreamHub; subscriber: LossySubscriber; redis: { del(...keys: string[]): Promise<number> } }, taskId: string, operations: Operation[]): Promise<void> {
  const { log, hub, subscriber } = rig;
  const models: ViewerModel[] = Array.from({ length: viewerCount }, () => ({ sessions: [], current: undefined }));
  // Writes are chained, not awaited: they run in order (as the writer's are) while viewers come and go.
  let writes: Promise<unknown> = Promise.resolve();
  const write = (action: () => Promise<unknown>): void => {
    writes = writes.then(action);
  };
  let attempt = 1;
  let finalText = "";
  await log.beginAttempt(taskId);
  for (const op of operations) {
    switch (op.kind) {
      case "append":
      {
        const current = attempt;
        write(async () => await log.append(taskId, current, op.deltas.map((text) => ({ type: "text-delta" as const, delta: text }))));
        finalText += op.deltas.join("");
        break;
      }
      case "retry":
        write(async () => await log.beginAttempt(taskId));
        attempt += 1;
        finalText = "";
        break;
      case "lose-log":
        write(async () => await rig.redis.del(log.keys(taskId).log, log.keys(taskId).meta));
        write(async () => await log.beginAttempt(taskId));
        attempt = 1;
        finalText = "";
        break;
      case "join": {
        const model = models[op.viewer];
        if (model && !model.current && !isFinished(model)) openSession(hub, taskId, model);
        break;
      }
      case "disconnect": {
        const session = models[op.viewer]?.current;
        if (!session) break;
        session.closeRequested = true;
        session.handle?.close();
        const model = models[op.viewer];
        if (model) model.current = undefined;
        break;
      }
      case "fill": {
        const session = models[op.viewer]?.current;
        if (session) session.memory.full = true;
        break;
      }
      case "drain": {
        const session = models[op.viewer]?.current;
        if (session?.memory.full) {
          session.memory.full = false;
          session.handle?.resume();
        }
        break;
      }
      case "drop-notification":
        subscriber.dropNext();
        break;
      case "pause":
        await sleep(op.milliseconds);
        break;
    }
  }
  await writes;
  await log.end(taskId, attempt, { status: "completed" });

  // Every viewer reads to the end: drain the full ones, resume the disconnected ones, join those that never did.
  for (const model of models) {
    for (let round = 0; !isFinished(model); round += 1) {
      if (round > 5) throw new Error("a viewer never reached the end");
      const session = model.current;
      if (!session || session.memory.ended) {
        openSession(hub, taskId, model);
        continue;
      }
      await session.opened;
      if (session.memory.full) {
        session.memory.full = false;
        session.handle?.resume();
      }
      await expect.poll(() => session.memory.ended, { timeout: 5_000, interval: 5 }).toBe(true);
    }
    checkSessions(model);
    const view = interpret(allEvents(model));
    expect(view.ends).toBe(1);
    expect(view.text).toBe(finalText);
  }
  await Promise.all(models.flatMap((model) => model.sessions.map(async (session) => await session.opened.catch(() => undefined))));
}

describe("interleavings (fast-check)", () => {
  it("every viewer gets the stream with no gap, no duplicate, in order, and the right text", async () => {
    const base = createStreamingRig();
    const subscriber = lossySubscriber(base.subscriber);
    // Random small delays on reads widen the join and catch-up races.
    let delay = 0;
    const log: StreamLog = {
      ...base.log,
      read: async (...args) => {
        delay = (delay + 7) % 5;
        await sleep(delay);
        return await base.log.read(...args);
      },
    };
    const hub = createStreamHub({ log, subscriber, stallTimeoutMs: 100, slowConsumerTimeoutMs: 60_000 });
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 30 }), async (operations) => {
          run += 1;
          await runScenario({ log: base.log, hub, subscriber, redis: base.redis }, `prop${run}`, operations);
        }),
        { numRuns: 100, endOnFailure: true },
      );
      await expect.poll(() => hub.stats(), { timeout: 5_000 }).toEqual({ streams: 0, viewers: 0, channels: 0, timers: 0 });
    } finally {
      await hub.close();
    }
  }, 120_000);
});
