// The load generator, run by bench/run.ts as a separate process:
//   node bench/load-client.ts '<LoadPlan JSON>'
// Opens `streams` streams spread over `rampMs` (Sluice: POST a message, then GET
// its streamUrl; baselines: POST /start, GET /stream; provider: one streaming
// POST /v1/chat/completions to the OpenAI-compatible bench server), measures every token's latency
// from its emit stamp (CLOCK_MONOTONIC µs, src/llm/token-stamp.ts) to its
// receipt here, checks that every stream got exactly `tokenCount` tokens, and
// prints one LoadResult JSON line on stdout (progress goes to stderr).
import { Agent } from "node:http";
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { monotonicMicros } from "../src/llm/token-stamp.ts";
import { openSse, requestJson, type SseConnection } from "./lib/open-sse.ts";
import { summarize, type Distribution } from "./lib/distribution.ts";
import { loopDelayOf, type EventLoopDelay } from "./lib/loop-delay.ts";

export interface LoadPlan {
  /** sluice: the product's API; baseline: bench/baselines; provider: the OpenAI-compatible bench server read directly. */
  kind: "sluice" | "baseline" | "provider";
  baseUrl: string;
  streams: number;
  rampMs: number;
  tokensPerSecond: number;
  tokenCount: number;
  /** Sluice only: JSON file with `{ tokens, conversationIds }` prepared by run.ts (outside the measurement). */
  sessionFile?: string;
  /**
   * Sluice only: send each message with `Accept: text/event-stream` and read its stream in the
   * POST's response (PROTOCOL.md 2.4); a resume GETs the `accepted` event's streamUrl.
   */
  streamInPost?: boolean;
  /** Sluice only: the first conversation this client uses (two clients of one step use disjoint ranges). */
  conversationOffset?: number;
  /** Each stream disconnects after this many tokens and resumes from its cursor once... */
  resumeAfterTokens?: number;
  /** ...after staying away this long, so the resume has missed tokens to replay (ms). */
  resumeGapMs?: number;
  timeoutMs: number;
}

export interface LoadResult {
  streams: number;
  completed: number;
  failed: number;
  errors: string[];
  tokensExpected: number;
  tokensReceived: number;
  lost: number;
  duplicated: number;
  /** Streams whose stamps went backwards (a chunk delivered twice or out of order). */
  outOfOrder: number;
  latencyMs: Distribution;
  /** Emit → receipt of each stream's first token. */
  firstTokenMs: Distribution;
  /** Request submitted (POST) → first token received. */
  submitToFirstTokenMs: Distribution;
  /** Request submitted → the POST's HTTP response (Sluice: the accepted message; provider: the stream's headers). */
  submitToAnswerMs: Distribution;
  /** Request submitted → the stream's `start` event (Sluice only: the worker began the generation). */
  submitToStartMs: Distribution | undefined;
  /**
   * `start` events received per second of the step (generations the workers began),
   * peak one-second bucket and mean over the seconds from the first to the last start.
   */
  startsPerSecond: { count: number; peak: number; mean: number } | undefined;
  resumeToFirstEventMs: Distribution | undefined;
  /** Reconnect → response headers: the route's work before the SSE starts (auth, task lookup, lease, hub join). */
  resumeToHeadersMs: Distribution | undefined;
  /** First GET of the stream → response headers. */
  openToHeadersMs?: Distribution;
  events: number;
  wallMs: number;
  /** The client's own CPU seconds and peak RSS: it shares the machine with the servers. */
  cpuSeconds: number;
  peakRssMb: number;
  /** The client's own event-loop delay: a late client stamps receipts late, and that is not the server's latency. */
  eventLoopDelay: EventLoopDelay;
}

const plan = JSON.parse(process.argv[2] ?? "{}") as LoadPlan;
const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
// SSE gets its own connections: sharing the keep-alive pool with the POSTs delayed
// (re)connections by hundreds of ms in this client (measured against the floor baseline).
const sseAgent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
/** One bearer token per conversation (its owner's), aligned with conversationIds. */
const session = plan.sessionFile ? (JSON.parse(readFileSync(plan.sessionFile, "utf8")) as { tokens: string[]; conversationIds: string[] }) : undefined;
const stampPattern = /⟨(\d+)⟩/g;

const latencies: number[] = [];
const firstToken: number[] = [];
const submitToFirst: number[] = [];
const resumeTimes: number[] = [];
const resumeHeaders: number[] = [];
const openHeaders: number[] = [];
const submitToAnswer: number[] = [];
const submitToStart: number[] = [];
/** Receipt time (µs) of each stream's first `start` event. */
const startTimes: number[] = [];
const errors: string[] = [];
let tokensReceived = 0;
let duplicated = 0;
let lost = 0;
let outOfOrder = 0;
let completed = 0;
let failed = 0;
let events = 0;

const noteError = (message: string): void => {
  if (errors.length < 5) errors.push(message);
};

async function runStream(index: number): Promise<void> {
  const submittedAt = monotonicMicros();
  let streamUrl: string;
  const conversation = index + (plan.conversationOffset ?? 0);
  const headers: Record<string, string> = session ? { Authorization: `Bearer ${session.tokens[conversation] ?? ""}` } : {};
  // The OpenAI-compatible bench server reads its pace from the message (bench/providers); the simulated provider ignores it.
  const content = `bench tokens_per_second=${plan.tokensPerSecond} token_count=${plan.tokenCount}`;
  const inPost = plan.kind === "sluice" && plan.streamInPost === true;
  if (inPost) {
    const conversationId = session?.conversationIds[conversation];
    if (!conversationId) throw new Error(`no conversation for stream ${index}`);
    streamUrl = `/api/conversations/${conversationId}/messages`;
  } else if (plan.kind === "sluice") {
    const conversationId = session?.conversationIds[conversation];
    if (!conversationId) throw new Error(`no conversation for stream ${index}`);
    const accepted = (await requestJson(`${plan.baseUrl}/api/conversations/${conversationId}/messages`, { agent, method: "POST", body: { content }, headers })) as { streamUrl: string };
    streamUrl = accepted.streamUrl;
    submitToAnswer.push((monotonicMicros() - submittedAt) / 1000);
  } else if (plan.kind === "baseline") {
    const accepted = (await requestJson(`${plan.baseUrl}/start?rate=${plan.tokensPerSecond}&count=${plan.tokenCount}`, { agent, method: "POST" })) as { streamUrl: string };
    streamUrl = accepted.streamUrl;
    submitToAnswer.push((monotonicMicros() - submittedAt) / 1000);
  } else {
    streamUrl = "/v1/chat/completions";
  }
  // Replaced by a GET of the accepted streamUrl once the POST's stream has been read from.
  let firstRequest: { method?: string; body?: unknown } =
    plan.kind === "provider"
      ? { method: "POST", body: { model: "bench", messages: [{ role: "user", content }], stream: true, stream_options: { include_usage: true } } }
      : inPost
        ? { method: "POST", body: { content } }
        : {};

  let tokens = 0;
  let lastStamp = 0;
  let lastEventId: string | undefined;
  let charactersBefore = 0;
  let resumedAt: number | undefined;
  let resumed = false;
  let sawOutOfOrder = false;
  let sawStart = false;
  await new Promise<void>((resolve) => {
    let connection: SseConnection;
    let ended = false;
    const deadline = setTimeout(() => finish("timeout"), plan.timeoutMs);
    function finish(error?: string): void {
      if (ended) return;
      ended = true;
      clearTimeout(deadline);
      connection.close();
      if (tokens > plan.tokenCount) duplicated += tokens - plan.tokenCount;
      if (tokens < plan.tokenCount) lost += plan.tokenCount - tokens;
      if (error !== undefined || tokens !== plan.tokenCount) {
        failed += 1;
        noteError(error ?? `stream ${index}: ${tokens}/${plan.tokenCount} tokens`);
      } else completed += 1;
      resolve();
    }
    const connect = (): void => {
      const connectedAt = monotonicMicros();
      const query = resumed ? `${streamUrl.includes("?") ? "&" : "?"}skip=${charactersBefore}` : "";
      connection = openSse(`${plan.baseUrl}${streamUrl}${query}`, { agent: sseAgent, ...firstRequest, headers: { ...headers, ...(resumed && lastEventId ? { "Last-Event-ID": lastEventId } : {}) } }, {
        onOpen: (status) => {
          (resumedAt === undefined ? openHeaders : resumeHeaders).push((monotonicMicros() - connectedAt) / 1000);
          if (plan.kind === "provider" || (inPost && resumedAt === undefined)) submitToAnswer.push((monotonicMicros() - submittedAt) / 1000);
          if (status !== 200) finish(`stream ${index}: HTTP ${status}`);
        },
        onEvent: (type, id, data) => {
          if (ended) return;
          const receivedAt = monotonicMicros();
          events += 1;
          if (id !== undefined) lastEventId = id;
          if (resumedAt !== undefined) {
            resumeTimes.push((receivedAt - resumedAt) / 1000);
            resumedAt = undefined;
          }
          // Chat Completions chunks: the stamps sit in the JSON's delta.content, unescaped (JSON keeps ⟨ ⟩ and digits as they are).
          const isProviderChunk = plan.kind === "provider" && type === "message" && data !== "[DONE]";
          if (type === "accepted") {
            streamUrl = (JSON.parse(data) as { streamUrl: string }).streamUrl;
            firstRequest = {};
          }
          if (type === "start" && !sawStart) {
            sawStart = true;
            startTimes.push(receivedAt);
            submitToStart.push((receivedAt - submittedAt) / 1000);
          }
          if (type === "text-delta" || isProviderChunk) {
            for (const match of data.matchAll(stampPattern)) {
              const stamp = Number(match[1]);
              const latencyMs = (receivedAt - stamp) / 1000;
              latencies.push(latencyMs);
              if (tokens === 0) {
                firstToken.push(latencyMs);
                submitToFirst.push((receivedAt - submittedAt) / 1000);
              }
              if (stamp < lastStamp && !sawOutOfOrder) {
                sawOutOfOrder = true;
                outOfOrder += 1;
              }
              lastStamp = stamp;
              tokens += 1;
              tokensReceived += 1;
            }
            if (plan.resumeAfterTokens !== undefined && !resumed && tokens >= plan.resumeAfterTokens) {
              resumed = true;
              charactersBefore = connection.characters;
              connection.close();
              setTimeout(() => {
                if (ended) return;
                resumedAt = monotonicMicros();
                connect();
              }, plan.resumeGapMs ?? 0);
            }
          } else if (type === "reset") {
            noteError(`stream ${index}: reset ${data}`);
          } else if (type === "end") {
            finish(data.includes('"completed"') ? undefined : `stream ${index}: end ${data}`);
          } else if (plan.kind === "provider" && data === "[DONE]") {
            finish();
          }
        },
        onClose: (error) => finish(error ? `stream ${index}: ${error.message}` : `stream ${index}: closed before end`),
      });
    };
    connect();
  });
}

// 5 ms, as the servers' probe (bench/probes/event-loop-delay.ts).
const loopDelayResolutionMs = 5;
const loopDelay = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
loopDelay.enable();
const startedAt = Date.now();
const startedAtMicros = monotonicMicros();
const running: Array<Promise<void>> = [];
await new Promise<void>((resolve) => {
  let launched = 0;
  const launch = (): void => {
    const due = plan.rampMs <= 0 ? plan.streams : Math.min(plan.streams, Math.floor(((Date.now() - startedAt) / plan.rampMs) * plan.streams) + 1);
    for (; launched < due; launched += 1) {
      const index = launched;
      running.push(
        runStream(index).catch((error: unknown) => {
          failed += 1;
          lost += plan.tokenCount;
          noteError(`stream ${index}: ${error instanceof Error ? error.message : String(error)}`);
        }),
      );
    }
    if (launched < plan.streams) setTimeout(launch, 5);
    else resolve();
  };
  launch();
});
const progress = setInterval(() => process.stderr.write(`progress ${JSON.stringify({ tokensReceived, completed, failed })}\n`), 1000);
await Promise.all(running);
clearInterval(progress);

/** Starts per one-second bucket (from the step's start): the peak bucket and the mean from the first start's bucket to the last's. */
function startRate(times: readonly number[]): LoadResult["startsPerSecond"] {
  if (times.length === 0) return undefined;
  const buckets = new Map<number, number>();
  for (const time of times) {
    const second = Math.floor((time - startedAtMicros) / 1e6);
    buckets.set(second, (buckets.get(second) ?? 0) + 1);
  }
  const seconds = [...buckets.keys()];
  const span = Math.max(...seconds) - Math.min(...seconds) + 1;
  return { count: times.length, peak: Math.max(...buckets.values()), mean: Math.round((times.length / span) * 10) / 10 };
}

const result: LoadResult = {
  streams: plan.streams,
  completed,
  failed,
  errors,
  tokensExpected: plan.streams * plan.tokenCount,
  tokensReceived,
  lost,
  duplicated,
  outOfOrder,
  latencyMs: summarize(latencies),
  firstTokenMs: summarize(firstToken),
  submitToFirstTokenMs: summarize(submitToFirst),
  submitToAnswerMs: summarize(submitToAnswer),
  submitToStartMs: submitToStart.length > 0 ? summarize(submitToStart) : undefined,
  startsPerSecond: startRate(startTimes),
  resumeToFirstEventMs: resumeTimes.length > 0 ? summarize(resumeTimes) : undefined,
  resumeToHeadersMs: resumeHeaders.length > 0 ? summarize(resumeHeaders) : undefined,
  openToHeadersMs: summarize(openHeaders),
  events,
  wallMs: Date.now() - startedAt,
  cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  eventLoopDelay: loopDelayOf(loopDelay, loopDelayResolutionMs),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
agent.destroy();
sseAgent.destroy();
process.exit(0);

