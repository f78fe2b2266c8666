import { SluiceError } from "../errors/catalog.ts";
import { pooledRandomBytes } from "../random/pooled-random-bytes.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { formatCursor } from "./cursor.ts";
import { endEvent, parseStreamEvent, type ContentEvent, type EndEvent, type EndOutcome, type LogEntry } from "./events.ts";
import { defineScript, type RedisClient } from "../redis/run-script.ts";
import { appendScript, beginAttemptScript, endScript, readScript } from "./stream-log-scripts.ts";
import { defaultKeyPrefix, streamKeys, type StreamKeys } from "./stream-keys.ts";

export interface StreamLimits {
  /** Entries in one stream, start/reset included (the end entry may exceed it). */
  maxEntries: number;
  /** Sum of the JSON bytes of a stream's entries (the end entry may exceed it). */
  maxBytes: number;
  /** JSON bytes of one event. */
  maxEventBytes: number;
}

/** PROTOCOL.md section 6. Also the defaults of STREAM_MAX_* (src/config/env-schema.ts imports them). */
export const defaultStreamLimits: StreamLimits = { maxEntries: 100_000, maxBytes: 16 * 1024 * 1024, maxEventBytes: 256 * 1024 };
export const defaultStreamTtlSeconds = 3600;
/**
 * Entries per `read` page. Each catch-up holds a page in memory several times over (the reply,
 * the parsed events, the frames, the joined write), up to ~4 KiB an entry. At 500 entries, 50
 * slow readers resuming at once can hold ~2 MB each several times over: the likely cause of one
 * CI run where fault 12's API grew 401 MB (others: 0-14 MB). At 100 it is a fifth, for a few
 * more round trips on a long resume.
 */
export const defaultReadPageSize = 100;

/**
 * A `read` page also stops at about this many bytes of entries (always at least one entry). A page
 * of 100 entries of large coalesced text is ~400 KiB, read, decoded, encoded and written in one go
 * to a slow reader's socket on every drain: with 50 such readers a CI run of fault 12 saw the API
 * grow 151 MB over ~390 drains (13 MB over 55 in another). Tokens of ordinary size still come 100
 * to a page.
 */
export const defaultReadPageBytes = 64 * 1024;

export interface StreamLogOptions {
  redis: RedisClient;
  keyPrefix?: string;
  /** How long the log is kept after its end event (s). A live log never expires. */
  ttlSeconds?: number;
  limits?: Partial<StreamLimits>;
  /** "spublish" for Redis Cluster (sharded pub/sub); the hub must then use "ssubscribe". */
  publishMode?: "publish" | "spublish";
  /** Entries per `read` page. */
  readPageSize?: number;
  /** Bytes of entries per `read` page (the entry that passes it starts the next page, unless it is the first). */
  readPageBytes?: number;
  /** Random token naming one copy of a log; injected for tests. Must match [A-Za-z0-9]{1,64}. */
  newIncarnation?: () => string;
  /** Its wall clock is stamped on each append's notification for the API's flush-to-SSE latency. */
  clock?: Pick<Clock, "wallClockMs">;
}

export interface AttemptStarted {
  attempt: number;
  incarnation: string;
  /** Seq of the start, reset or continue entry. */
  seq: number;
  /** True when this call created the log (first attempt, or the log was lost and is being replaced). */
  created: boolean;
  /** True when the attempt began with `continue`: the reply in the log before `seq` stays its start. */
  continued: boolean;
}

export interface AppendResult {
  firstSeq: number;
  lastSeq: number;
}

export interface EndResult {
  seq: number;
  incarnation: string;
  cursor: string;
  event: EndEvent;
  /** True when the stream had ended before: nothing was written, `event` is the existing end. */
  alreadyEnded: boolean;
}

/** Whether the log has its `end` (the meta hash's `state`). */
export type LogState = "live" | "ended";

export interface StreamMeta {
  incarnation: string;
  attempt: number;
  lastSeq: number;
  bytes: number;
  state: LogState;
  endSeq: number | undefined;
}

export interface LogPage {
  incarnation: string;
  state: LogState;
  attempt: number;
  /** Last seq in the log when the page was read. */
  lastSeq: number;
  endSeq: number | undefined;
  /** Consecutive entries after the requested seq, at most one page. */
  entries: LogEntry[];
}

export interface StreamLog {
  readonly keyPrefix: string;
  readonly pageSize: number;
  keys(taskId: string): StreamKeys;
  /**
   * Starts attempt 1 (appends `start`) or a retry (appends `reset`), creating the
   * log if missing. With `continueReply`, a retry appends `continue` instead (the
   * reply so far stays; `continued` says so) unless the log had to be created. Rejects
   * with STALE_ATTEMPT when the stream has already ended.
   */
  beginAttempt(taskId: string, options?: { model?: string; minAttempt?: number; continueReply?: boolean }): Promise<AttemptStarted>;
  /**
   * Appends events atomically (one EVALSHA), fenced by attempt. Rejects with
   * STALE_ATTEMPT, EVENT_TOO_LARGE, STREAM_TOO_LARGE or STREAM_NOT_FOUND (the log
   * was lost); on rejection nothing is written.
   */
  append(taskId: string, attempt: number, events: readonly ContentEvent[], expectedFirstSeq?: number): Promise<AppendResult>;
  /** Appends the one `end` entry (fenced) and starts the retention TTL. A second end is a no-op reporting the first. */
  end(taskId: string, attempt: number, outcome: EndOutcome): Promise<EndResult>;
  /** Unfenced end for the orphan sweeper and the retry-limit path; creates the log if missing; idempotent. */
  forceEnd(taskId: string, outcome: EndOutcome): Promise<EndResult>;
  /** Entries after `afterSeq` (at most `limit`, default pageSize) with the meta of the same instant; undefined when there is no log. */
  read(taskId: string, afterSeq: number, limit?: number): Promise<LogPage | undefined>;
  inspect(taskId: string): Promise<StreamMeta | undefined>;
  /** Shortens the log's life (entries and meta) to `ttlMs`, ended or not: a deleted conversation's tombstone. */
  expire(taskId: string, ttlMs: number): Promise<void>;
  /** Deletes the log and its meta now. */
  remove(taskId: string): Promise<void>;
}

const runBeginAttempt = defineScript(beginAttemptScript);
const runAppend = defineScript(appendScript);
const runEnd = defineScript(endScript);
const runRead = defineScript(readScript);

const contentTypes = new Set(["text-delta", "reasoning-delta", "usage"]);

/**
 * The sequenced Redis log of one generation per task: a Redis Stream with
 * explicit ids `<seq>-0`, a meta hash and a notification channel
 * (docs/decisions/2026-11-25-redis-streams-log.md).
 */
export function createStreamLog(options: StreamLogOptions): StreamLog {
  const { redis } = options;
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  const ttlSeconds = options.ttlSeconds ?? defaultStreamTtlSeconds;
  const limits: StreamLimits = { ...defaultStreamLimits, ...options.limits };
  const publishCommand = options.publishMode === "spublish" ? "SPUBLISH" : "PUBLISH";
  const pageSize = options.readPageSize ?? defaultReadPageSize;
  const pageBytes = options.readPageBytes ?? defaultReadPageBytes;
  const newIncarnation = options.newIncarnation ?? (() => pooledRandomBytes(6).toString("hex"));
  // Sub-millisecond: the API subtracts it from its own wall clock, and same-host latencies are well under 1 ms.
  const clock = options.clock ?? systemClock;
  const keysOf = (taskId: string): StreamKeys => streamKeys(keyPrefix, taskId);
  const writeKeys = (taskId: string): string[] => {
    const keys = keysOf(taskId);
    return [keys.log, keys.meta, keys.notify];
  };

  const runEndScript = async (taskId: string, attempt: string, outcome: EndOutcome): Promise<EndResult> => {
    const json = JSON.stringify(endEvent(outcome));
    const reply = asArray(await runEnd(redis, writeKeys(taskId), [publishCommand, attempt, ttlSeconds, json, newIncarnation()]));
    const status = reply[0];
    if (status === "MISSING") throw new SluiceError("STREAM_NOT_FOUND", "The stream's log does not exist: it was lost or has expired.");
    if (status === "STALE") throw staleAttempt(Number(reply[1]));
    if (status !== "OK" && status !== "ENDED") throw unexpectedReply(reply);
    const seq = Number(reply[1]);
    const incarnation = String(reply[2]);
    const event = parseStreamEvent(String(reply[3]));
    if (event?.type !== "end") throw unexpectedReply(reply);
    return { seq, incarnation, cursor: formatCursor(incarnation, seq), event, alreadyEnded: status === "ENDED" };
  };

  return {
    keyPrefix,
    pageSize,
    keys: keysOf,

    async beginAttempt(taskId, attemptOptions) {
      const modelSuffix = attemptOptions?.model === undefined ? "" : `,"model":${JSON.stringify(attemptOptions.model)}`;
      const reply = asArray(
        await runBeginAttempt(redis, writeKeys(taskId), [publishCommand, newIncarnation(), modelSuffix, attemptOptions?.minAttempt ?? "", attemptOptions?.continueReply === true ? "1" : ""]),
      );
      if (reply[0] === "ENDED") throw new SluiceError("STALE_ATTEMPT", "The stream has already ended; no new attempt can start.");
      if (reply[0] !== "OK") throw unexpectedReply(reply);
      return { attempt: Number(reply[1]), incarnation: String(reply[2]), seq: Number(reply[3]), created: Number(reply[4]) === 1, continued: Number(reply[5]) === 1 };
    },

    async append(taskId, attempt, events, expectedFirstSeq) {
      if (events.length === 0) throw new Error("append needs at least one event");
      const jsons = events.map((event) => {
        if (!contentTypes.has(event.type)) throw new Error(`append takes content events only, not "${event.type}"`);
        return JSON.stringify(event);
      });
      const reply = asArray(
        await runAppend(redis, writeKeys(taskId), [publishCommand, attempt, limits.maxEntries, limits.maxBytes, limits.maxEventBytes, expectedFirstSeq ?? "", clock.wallClockMs().toFixed(3), ...jsons]),
      );
      switch (reply[0]) {
        case "OK":
        case "DUPLICATE":
          return { firstSeq: Number(reply[1]), lastSeq: Number(reply[2]) };
        case "SEQ_MISMATCH":
          // Another writer of the same attempt wrote in between: impossible unless the attempt was shared.
          throw new SluiceError("STALE_ATTEMPT", `The log is at seq ${String(reply[1])}, not where this writer expected it.`);
        case "MISSING":
          throw new SluiceError("STREAM_NOT_FOUND", "The stream's log does not exist: it was lost or has expired.");
        case "ENDED":
          throw new SluiceError("STALE_ATTEMPT", "The stream has already ended.");
        case "STALE":
          throw staleAttempt(Number(reply[1]));
        case "EVENT_TOO_LARGE":
          throw new SluiceError("EVENT_TOO_LARGE", `An event of ${String(reply[1])} bytes exceeds the limit of ${limits.maxEventBytes}.`, {
            details: { limitBytes: limits.maxEventBytes },
          });
        case "STREAM_TOO_LARGE":
          throw new SluiceError("STREAM_TOO_LARGE", undefined, { details: { maxEntries: limits.maxEntries, maxBytes: limits.maxBytes } });
        default:
          throw unexpectedReply(reply);
      }
    },

    end: async (taskId, attempt, outcome) => await runEndScript(taskId, String(attempt), outcome),

    forceEnd: async (taskId, outcome) => await runEndScript(taskId, "", outcome),

    async read(taskId, afterSeq, limit = pageSize) {
      const keys = keysOf(taskId);
      const reply = await runRead(redis, [keys.log, keys.meta], [afterSeq, limit, pageBytes]);
      if (reply === null) return undefined;
      const [incarnation, state, lastSeq, attempt, endSeq, rawEntries] = asArray(reply);
      const entries = asArray(rawEntries).map((raw) => parseLogEntry(raw));
      return {
        incarnation: String(incarnation),
        state: state === "ended" ? "ended" : "live",
        attempt: Number(attempt),
        lastSeq: Number(lastSeq),
        endSeq: Number(endSeq) > 0 ? Number(endSeq) : undefined,
        entries,
      };
    },

    async inspect(taskId) {
      const fields = await redis.hgetall(keysOf(taskId).meta);
      if (fields.incarnation === undefined) return undefined;
      return {
        incarnation: fields.incarnation,
        attempt: Number(fields.attempt ?? 0),
        lastSeq: Number(fields.lastSeq ?? 0),
        bytes: Number(fields.bytes ?? 0),
        state: fields.state === "ended" ? "ended" : "live",
        endSeq: fields.endSeq === undefined ? undefined : Number(fields.endSeq),
      };
    },

    async expire(taskId, ttlMs) {
      const keys = keysOf(taskId);
      await redis.pexpire(keys.log, ttlMs);
      await redis.pexpire(keys.meta, ttlMs);
    },

    async remove(taskId) {
      const keys = keysOf(taskId);
      await redis.del(keys.log, keys.meta);
    },
  };
}

function staleAttempt(currentAttempt: number): SluiceError {
  return new SluiceError("STALE_ATTEMPT", undefined, { details: { currentAttempt } });
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error(`unexpected script reply: ${JSON.stringify(value)}`);
  return value as unknown[];
}

function unexpectedReply(reply: unknown[]): Error {
  return new Error(`unexpected script reply: ${JSON.stringify(reply).slice(0, 200)}`);
}

// XRANGE entry: [id, [field, value]]. The log only ever holds field "d".
function parseLogEntry(raw: unknown): LogEntry {
  const [id, fields] = asArray(raw);
  const json = asArray(fields)[1];
  const event = typeof json === "string" ? parseStreamEvent(json) : undefined;
  if (typeof id !== "string" || event === undefined) throw new Error(`corrupt stream log entry ${String(id)}`);
  return { seq: Number.parseInt(id, 10), event };
}
