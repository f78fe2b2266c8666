import { expect } from "vitest";

/**
 * The verdict every fuzzed request shares: an event stream is answered 200 (and closed at once),
 * anything else below 500 with no stack trace, path or source location in its body.
 * Returns the body of a non-stream answer for the caller's checks of its shape.
 */
export async function expectNoServerError(response: Response, abort: AbortController, label: string): Promise<string | undefined> {
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    abort.abort();
    expect(response.status, label).toBe(200);
    return undefined;
  }
  const text = await response.text();
  expect(response.status, `${label} → ${text.slice(0, 300)}`).toBeLessThan(500);
  expect(text, label).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|"stack"\s*:/);
  return text;
}
