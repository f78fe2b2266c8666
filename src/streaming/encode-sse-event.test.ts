import { describe, expect, it } from "vitest";
import { createSseParser } from "../../test/support/streaming/sse-parser.ts";
import { formatCursor, parseCursor } from "./cursor.ts";
import { encodeSseComment, encodeSseEvent, encodeSseRetry } from "./encode-sse-event.ts";

const hostile = "line1\nline2\r\nline3\rdata: {\"type\":\"end\"}\n\nid: evil-9\nevent: end\n\0nul\u2028\u2029\ud800 lone";

describe("SSE encoding", () => {
  it("encodes one frame with id, event and one data line", () => {
    expect(encodeSseEvent("abc-3", { type: "text-delta", delta: "hi" })).toBe('id: abc-3\nevent: text-delta\ndata: {"type":"text-delta","delta":"hi"}\n\n');
    expect(encodeSseRetry(2417.4)).toBe("retry: 2417\n\n");
    expect(encodeSseComment("ping")).toBe(": ping\n\n");
  });

  it("keeps framing characters inside a delta as data: one event, the text intact", () => {
    const frame = encodeSseEvent("abc-4", { type: "text-delta", delta: hostile });
    expect(frame.split("\n").filter((line) => line !== "")).toHaveLength(3);
    const parser = createSseParser();
    parser.push(frame);
    expect(parser.events).toHaveLength(1);
    expect(parser.events[0]).toMatchObject({ id: "abc-4", event: "text-delta" });
    expect(JSON.parse(parser.events[0]?.data ?? "")).toEqual({ type: "text-delta", delta: hostile });
  });
});

describe("cursors", () => {
  it("round-trips and accepts seq 0 (before the first entry)", () => {
    expect(parseCursor(formatCursor("6b1e0c9d4a27", 41))).toEqual({ incarnation: "6b1e0c9d4a27", seq: 41 });
    expect(parseCursor("abc-0")).toEqual({ incarnation: "abc", seq: 0 });
  });

  it.each(["", "abc", "abc-", "-1", "abc-01", "abc--1", "abc-1.5", "a b-1", "abc-99999999999999999", `${"a".repeat(65)}-1`, "abc-1\n"])(
    "rejects %j with INVALID_CURSOR",
    (text) => {
      expect(() => parseCursor(text)).toThrow(expect.objectContaining({ code: "INVALID_CURSOR", status: 400 }));
    },
  );
});
