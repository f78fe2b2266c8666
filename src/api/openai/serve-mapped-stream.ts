import type { FastifyReply } from "fastify";
import { SluiceError } from "../../errors/catalog.ts";
import { callRedis } from "../../errors/dependency-failure.ts";
import type { OpenStreamLease, OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import type { EndEvent, LogEntry } from "../../streaming/events.ts";
import { sseHeaders, type StreamHub, type WhenLogMissingOption } from "../../streaming/index.ts";
import { repeatEvery, type Clock } from "../../time/clock.ts";
import { createCompletionCollector } from "./chat-completion-format.ts";
import { watchGeneration } from "./watch-generation.ts";

/** One open-stream slot of the user while a `/v1` answer is read (README "Limits"); the returned release is idempotent. */
export async function holdOpenStreamLease(leases: OpenStreamLeases, userId: string, renewMs: number, clock: Clock): Promise<() => void> {
  const lease: OpenStreamLease = await callRedis(() => leases.acquire(userId));
  const stopRenewal = repeatEvery(clock, renewMs, () => void lease.renew().catch(() => undefined));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    stopRenewal();
    void lease.release().catch(() => undefined);
  };
}

export interface MappedStreamOptions {
  reply: FastifyReply;
  hub: StreamHub;
  taskId: string;
  whenMissing?: WhenLogMissingOption;
  heartbeatMs: number;
  clock: Clock;
  /** SSE text for the entries, in order; "" for none. */
  map: (entries: LogEntry[]) => string;
  /** True once the format's last frame was written: the response ends. */
  isFinished: () => boolean;
  /** Written when the hub lets go before the end (this process shuts down). */
  closedByServerFrame: string;
  /** Called once when the response is over, however it ended. */
  onClose: () => void;
}

/**
 * Serves a generation's log as SSE in another format (OpenAI's): the hub's replay and live
 * delivery (PROTOCOL.md section 8), mapped entry by entry, with the hub's backpressure (a full
 * socket pauses the viewer until it drains) and heartbeat comments. Errors before the first byte
 * (the hub could not open) are thrown, for the route's error handler. Resolves when the response
 * is over; the generation itself is never stopped by it.
 */
export async function serveMappedStream(options: MappedStreamOptions): Promise<void> {
  const { reply } = options;
  const response = reply.raw;
  const watch = await watchGeneration({
    hub: options.hub,
    taskId: options.taskId,
    ...(options.whenMissing === undefined ? {} : { whenMissing: options.whenMissing }),
    onEntries: (entries) => {
      const text = options.map(entries);
      const accepted = text === "" || response.write(text);
      if (options.isFinished()) response.end();
      return accepted;
    },
  });
  reply.hijack();
  const onDrain = (): void => watch.resume();
  const stopHeartbeat = repeatEvery(options.clock, options.heartbeatMs, () => {
    if (!response.writableEnded && !response.writableNeedDrain) response.write(": ping\n\n");
  });
  let resolveFinished: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    resolveFinished = resolve;
  });
  const onClose = (): void => {
    stopHeartbeat();
    response.off("drain", onDrain);
    watch.close();
    options.onClose();
    resolveFinished();
  };
  response.once("close", onClose);
  // A client that hung up while the route awaited: its close event is gone already.
  if (response.closed || response.destroyed) {
    onClose();
    return;
  }
  response.on("drain", onDrain);
  response.writeHead(200, sseHeaders);
  void watch.done.then((outcome) => {
    // OpenAI's formats resume differently or not at all; the client is told to retry, the generation runs on.
    if (outcome === "closed" && !response.writableEnded) response.end(options.closedByServerFrame);
  });
  watch.start();
  await finished;
}

/**
 * Reads the whole log for a non-streamed answer: the text after the last reset, the last usage
 * and the `end`. The client leaving stops only this reading (undefined: the route answers
 * nothing, after `reply.hijack()`); a hub that lets go first (shutdown) is a 503 to retry.
 */
export async function collectGeneration(reply: FastifyReply, hub: StreamHub, taskId: string): Promise<{ text: string; reasoning: string; usage: ReturnType<typeof createCompletionCollector>["usage"]; end: EndEvent } | undefined> {
  const collector = createCompletionCollector();
  const watch = await watchGeneration({ hub, taskId, onEntries: (entries) => (collector.push(entries), true) });
  const onClose = (): void => watch.close();
  reply.raw.once("close", onClose);
  try {
    if (reply.raw.closed || reply.raw.destroyed) watch.close();
    else watch.start();
    await watch.done;
  } finally {
    reply.raw.off("close", onClose);
    watch.close();
  }
  const end = collector.end;
  // The client went away: nobody to answer (the generation runs on); the route sends nothing.
  if (!end && (reply.raw.closed || reply.raw.destroyed)) return undefined;
  if (!end) throw new SluiceError("SERVICE_UNAVAILABLE", "The server stopped reading the generation; retry.", { details: { retryAfterSeconds: 1 } });
  return { text: collector.text, reasoning: collector.reasoning, usage: collector.usage, end };
}
