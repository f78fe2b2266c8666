import type { TurnEvents } from "../api/turn-stream.ts";
import type { StreamEvent } from "./live-reply.ts";

/** `live`: events flowing; `connecting`: first connect; `reconnecting`: lost, retrying on its own. */
export type ConnectionState = "connecting" | "live" | "reconnecting";

export interface GenerationStreamOptions {
  /** The `streamUrl` from the API: a path with a short-lived read `token` in its query. */
  streamUrl: string;
  /** Resume after this cursor (sent as the `lastEventId` query parameter). */
  lastEventId: string | null;
  onEvent: (event: StreamEvent) => void;
  onConnectionChange: (state: ConnectionState) => void;
  /**
   * Called when the EventSource gave up (401 for an expired read token, 404/410,
   * or a network failure the browser will not retry). Returns a fresh streamUrl to
   * reopen with, or null when the generation is no longer active (read the saved
   * message instead). Throwing means "try again later" (e.g. still offline).
   */
  refreshStreamUrl: () => Promise<string | null>;
  /** Called once when the stream will deliver nothing more: after `end`, or when refresh returned null. */
  onFinished: () => void;
  /** Reads the cursor to resume from; the owner tracks it while applying events. */
  currentCursor: () => string | null;
  /**
   * Called before reconnecting without a cursor because reopening with it kept
   * failing (PROTOCOL.md 2.3: 400 INVALID_CURSOR means "drop the cursor, discard
   * what you had"); the owner clears the reply, which is then replayed whole.
   */
  onRestartFromBeginning: () => void;
  /**
   * The stream the POST that started the generation answered with (PROTOCOL.md 2.4): read first,
   * in place of opening `streamUrl`. If it breaks before `end`, `streamUrl` is opened with the cursor.
   */
  initialEvents?: TurnEvents | null;
  /** Injected for tests; EventSource by default. */
  createEventSource?: (url: string) => EventSource;
}

export interface GenerationStream {
  close(): void;
}

// `continue` carries no text (PROTOCOL.md 4.3) but has an id: applying it moves the cursor past it.
const eventTypes = ["start", "reset", "continue", "text-delta", "reasoning-delta", "usage", "end"] as const;
/** Backoff between our own reopen attempts after the browser gave up, in ms. */
const reopenDelaysMs = [250, 1000, 2000, 4000];
/**
 * PROTOCOL.md 5: nothing at all for twice the heartbeat interval (15 s by default) means the
 * connection is dead. Only the POST's stream can tell: EventSource hides heartbeat comments.
 */
const deadAfterSilenceMs = 30_000;
const silenceCheckMs = 5_000;
/** EventSource hides the status code, so a cursor refused this many times in a row with a fresh URL counts as invalid. */
const maxRefusalsWithCursor = 3;

/**
 * One EventSource for one generation, kept alive across network breaks.
 *
 * 1. The browser retries dropped connections itself and sends Last-Event-ID, so a
 *    `CONNECTING` error only flips the indicator to "reconnecting".
 * 2. When the browser gives up (`CLOSED`: a 401 for an expired read token, a 404/410,
 *    or a failed reconnect), we ask the owner for a fresh streamUrl and reopen with
 *    `lastEventId=<last applied id>`, backing off, and retrying at once on `online`.
 * 3. After `end` the source is closed before the server's close can trigger a reconnect.
 * 4. With `initialEvents` (the POST's own stream) no EventSource opens until that stream
 *    breaks, closes without `end` or stays silent past `deadAfterSilenceMs`; then `streamUrl`
 *    opens with the cursor after the server's `retry:`, as after a drop.
 */
export function openGenerationStream(options: GenerationStreamOptions): GenerationStream {
  const createEventSource = options.createEventSource ?? ((url: string) => new EventSource(url));
  let source: EventSource | null = null;
  let closed = false;
  let reopenTimer: ReturnType<typeof setTimeout> | null = null;
  let failedReopens = 0;
  /** Reopens with a fresh streamUrl that failed before their first byte: the cursor itself is refused. */
  let refusedWithCursor = 0;
  let refreshing = false;
  /** The POST's stream while it is read; no EventSource is open meanwhile. */
  let turnEvents: TurnEvents | null = null;

  function connect(streamUrl: string, cursor: string | null): void {
    if (closed) return;
    const eventSource = createEventSource(withCursor(streamUrl, cursor));
    source = eventSource;
    let opened = false;
    eventSource.onopen = () => {
      if (source !== eventSource) return;
      opened = true;
      failedReopens = 0;
      refusedWithCursor = 0;
      options.onConnectionChange("live");
    };
    eventSource.onerror = () => {
      if (source !== eventSource || closed) return;
      options.onConnectionChange("reconnecting");
      if (eventSource.readyState === EventSource.CLOSED) {
        if (!opened && cursor !== null) refusedWithCursor += 1;
        scheduleReopen();
      }
    };
    for (const type of eventTypes) {
      eventSource.addEventListener(type, (message: MessageEvent<string>) => {
        if (source !== eventSource || closed) return;
        options.onEvent({ type, id: message.lastEventId, data: parseData(message.data) });
        if (type === "end") finish();
      });
    }
  }

  async function readTurnEvents(events: TurnEvents): Promise<void> {
    turnEvents = events;
    options.onConnectionChange("live");
    let lastId = options.lastEventId ?? "";
    // A half-open connection never errors: cancelling it ends the read below, which resumes by streamUrl.
    const watchdog = setInterval(() => {
      if (Date.now() - events.lastActivityMs() >= deadAfterSilenceMs) events.cancel();
    }, silenceCheckMs);
    try {
      for (;;) {
        const next = await events.read();
        if (closed || next.done) break;
        const message = next.value;
        if (message.id !== undefined) lastId = message.id;
        const type = eventTypes.find((candidate) => candidate === message.event);
        if (type === undefined) continue;
        options.onEvent({ type, id: lastId, data: parseData(message.data) });
        if (type === "end") {
          finish();
          return;
        }
      }
    } catch {
      // The connection broke (or applying an event threw): resume below, as the browser does for an EventSource.
    } finally {
      clearInterval(watchdog);
    }
    events.cancel();
    turnEvents = null;
    if (closed) return;
    options.onConnectionChange("reconnecting");
    // The server's jittered `retry:` spreads the clients of a server that shut down (PROTOCOL.md 5).
    const delayMs = events.retryMs() ?? reopenDelaysMs[0] ?? 250;
    reopenTimer = setTimeout(() => {
      reopenTimer = null;
      connect(options.streamUrl, options.currentCursor());
    }, delayMs);
  }

  function scheduleReopen(): void {
    source?.close();
    source = null;
    if (reopenTimer !== null || closed) return;
    const delayMs = reopenDelaysMs[Math.min(failedReopens, reopenDelaysMs.length - 1)] ?? 4000;
    failedReopens += 1;
    reopenTimer = setTimeout(() => void reopen(), delayMs);
  }

  async function reopen(): Promise<void> {
    reopenTimer = null;
    if (closed || refreshing || source !== null || turnEvents !== null) return;
    refreshing = true;
    try {
      const streamUrl = await options.refreshStreamUrl();
      if (closed) return;
      if (streamUrl === null) {
        finish();
        return;
      }
      if (refusedWithCursor >= maxRefusalsWithCursor) {
        refusedWithCursor = 0;
        options.onRestartFromBeginning();
        connect(streamUrl, null);
      } else {
        connect(streamUrl, options.currentCursor());
      }
    } catch {
      scheduleReopen();
    } finally {
      refreshing = false;
    }
  }

  function onOnline(): void {
    if (closed || source !== null || turnEvents !== null) return;
    if (reopenTimer !== null) clearTimeout(reopenTimer);
    void reopen();
  }

  function finish(): void {
    if (closed) return;
    close();
    options.onFinished();
  }

  function close(): void {
    closed = true;
    source?.close();
    source = null;
    turnEvents?.cancel();
    turnEvents = null;
    if (reopenTimer !== null) clearTimeout(reopenTimer);
    reopenTimer = null;
    if (typeof window !== "undefined") window.removeEventListener("online", onOnline);
  }

  if (typeof window !== "undefined") window.addEventListener("online", onOnline);
  if (options.initialEvents) {
    void readTurnEvents(options.initialEvents);
  } else {
    options.onConnectionChange("connecting");
    connect(options.streamUrl, options.lastEventId);
  }
  return { close };
}

function withCursor(streamUrl: string, cursor: string | null): string {
  if (cursor === null) return streamUrl;
  const url = new URL(streamUrl, window.location.origin);
  url.searchParams.set("lastEventId", cursor);
  return url.pathname + url.search;
}

function parseData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return {};
  }
}
