// The streaming core's public surface (PROTOCOL.md). It depends on Redis and
// node:http types only: the API and the worker wire it in.
export { formatCursor, parseCursor, type Cursor } from "./cursor.ts";
export { encodeSseComment, encodeSseEvent, encodeSseRetry } from "./encode-sse-event.ts";
export type {
  ContentEvent,
  ContinueEvent,
  EndEvent,
  EndOutcome,
  EndStatus,
  LogEntry,
  ResetReason,
  StreamErrorInfo,
  StreamEvent,
  StreamEventType,
} from "./events.ts";
export { cursorFromRequest, defaultCloseGraceMs, defaultHeartbeatMs, serveSse, sseHeaders, writeErrorResponse, type ServeSseOptions } from "./serve-sse.ts";
export {
  createStreamHub,
  defaultRetryJitterMs,
  defaultRetryMs,
  defaultSlowConsumerTimeoutMs,
  defaultStallTimeoutMs,
  type HubStats,
  type HubViewer,
  type OpenViewerOptions,
  type OpenViewerResult,
  type PubSubConnection,
  type StreamHub,
  type StreamHubOptions,
  type ViewerSink,
  type WhenLogMissing,
  type WhenLogMissingOption,
} from "./stream-hub.ts";
export { defaultKeyPrefix, streamKeys, type StreamKeys } from "./stream-keys.ts";
export {
  createStreamLog,
  defaultReadPageSize,
  defaultReadPageBytes,
  defaultStreamLimits,
  defaultStreamTtlSeconds,
  type AppendResult,
  type AttemptStarted,
  type EndResult,
  type LogPage,
  type StreamLimits,
  type StreamLog,
  type StreamLogOptions,
  type StreamMeta,
} from "./stream-log.ts";
export { noopStreamMetrics, type GapReason, type SlowConsumerAction, type StreamMetrics } from "./stream-metrics.ts";
export { createStreamWriter, defaultCoalesceMaxBytes, defaultCoalesceWindowMs, type StreamWriter, type StreamWriterOptions } from "./stream-writer.ts";
