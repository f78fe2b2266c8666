import { SluiceError } from "../errors/catalog.ts";

/**
 * A position in one copy of a stream's log (PROTOCOL.md 4.1). On the wire it is
 * opaque; here it is `<incarnation>-<seq>`: `seq` maps directly to the Redis
 * Stream entry id `<seq>-0`, and `<incarnation>-0` means "before the first entry".
 */
export interface Cursor {
  incarnation: string;
  seq: number;
}

const maxCursorLength = 100;
const cursorPattern = /^([A-Za-z0-9]{1,64})-(0|[1-9][0-9]{0,15})$/;

export function formatCursor(incarnation: string, seq: number): string {
  return `${incarnation}-${seq}`;
}

/**
 * Parses a client's `Last-Event-ID`. Garbage is the client's fault, so it is a
 * 400 `INVALID_CURSOR`, never a 5xx.
 *
 * @example parseCursor("6b1e0c9d4a27-41") // { incarnation: "6b1e0c9d4a27", seq: 41 }
 */
export function parseCursor(text: string): Cursor {
  const match = text.length <= maxCursorLength ? cursorPattern.exec(text) : null;
  const seq = match ? Number(match[2]) : Number.NaN;
  if (!match || !Number.isSafeInteger(seq)) {
    throw new SluiceError("INVALID_CURSOR", undefined, { details: { cursor: text.slice(0, maxCursorLength) } });
  }
  return { incarnation: match[1] ?? "", seq };
}
