import { expect } from "vitest";
import { getJson, openSse, type SseConnection } from "../../support/streaming/http-sse-client.ts";
import type { ParsedSseEvent } from "../../support/streaming/sse-parser.ts";
import type { StreamEndpoint } from "./conformance-target.ts";

/** `GET /api/stream/:taskId` of PROTOCOL.md 1, with an optional query (`?lastEventId=…`). */
export const streamUrl = (stream: Pick<StreamEndpoint, "baseUrl" | "taskId">, query = ""): string =>
  `${stream.baseUrl}/api/stream/${encodeURIComponent(stream.taskId)}${query}`;

/** The stream's URL with its read token in the query, as EventSource reads it (PROTOCOL.md 2.1). */
export const tokenUrl = (stream: StreamEndpoint, otherQuery = ""): string => streamUrl(stream, `?token=${encodeURIComponent(stream.readToken)}${otherQuery}`);

/** Opens the stream as its owner (Bearer), with extra headers and query. */
export const connect = async (stream: StreamEndpoint, headers: Record<string, string> = {}, query = ""): Promise<SseConnection> =>
  await openSse(streamUrl(stream, query), { ...stream.authHeaders, ...headers });

/** Reads a non-SSE answer (an error, 204) as the owner. */
export const getAsOwner = async (stream: StreamEndpoint, headers: Record<string, string> = {}, query = ""): Promise<{ status: number; body: unknown }> =>
  await getJson(streamUrl(stream, query), { ...stream.authHeaders, ...headers });

/** `POST /api/stream/:taskId/cancel` (PROTOCOL.md 7). */
export async function postCancel(stream: Pick<StreamEndpoint, "baseUrl" | "taskId">, headers: Readonly<Record<string, string>>): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${streamUrl(stream)}/cancel`, { method: "POST", headers });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

export const dataOf = (event: ParsedSseEvent | undefined): Record<string, unknown> => JSON.parse(event?.data ?? "null") as Record<string, unknown>;

/** Every frame well-formed (PROTOCOL.md 2.2): an id, an event name equal to data.type, one JSON object. */
export function expectWellFormed(events: readonly ParsedSseEvent[]): void {
  for (const event of events) {
    expect(event.id).toMatch(/^[A-Za-z0-9-]{1,100}$/);
    expect(dataOf(event).type).toBe(event.event);
  }
}

/** The error answer of PROTOCOL.md 2.3: the status and `{"error":{"code","message"}}`. */
export function expectError(answer: { status: number; body: unknown }, status: number, code: string): void {
  expect(answer, JSON.stringify(answer)).toMatchObject({ status, body: { error: { code } } });
  expect(typeof (answer.body as { error: { message: unknown } }).error.message).toBe("string");
}

/**
 * The status and error body of one GET without waiting for a live stream to end:
 * a 200 is closed at once (its body is the stream, not an answer).
 */
export async function answerOf(url: string, headers: Readonly<Record<string, string>> = {}): Promise<{ status: number; body: unknown }> {
  const connection = await openSse(url, { ...headers });
  if (connection.status === 200) {
    connection.abort();
    return { status: 200, body: undefined };
  }
  await connection.closed;
  const text = connection.raw();
  return { status: connection.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}
