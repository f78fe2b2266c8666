/**
 * Makes provider text storable (PROTOCOL.md section 3, "Text the model sends"):
 * U+0000, which a PostgreSQL `text` column refuses, and lone UTF-16 surrogates,
 * which UTF-8 cannot carry, both become U+FFFD. The streamed deltas and the saved
 * message are built from the same cleaned deltas, so a reply is never lost (nor
 * saved differently from what viewers saw) for its bytes.
 *
 * A surrogate pair may be split across two deltas, so a delta's trailing high
 * surrogate is held back until the next one shows whether its pair follows.
 *
 * @example const text = createStorableText(); text.push("a\u0000\ud83d"); // "a\uFFFD"; then text.push("\ude80") === "🚀"
 */
export interface StorableText {
  /** The storable part of `delta`, possibly "" (a held-back high surrogate). */
  push(delta: string): string;
  /** What is still held back at the end of the stream: "" or U+FFFD. */
  flush(): string;
}

export function createStorableText(): StorableText {
  let heldBack = "";
  return {
    push(delta) {
      let text = heldBack + delta;
      heldBack = "";
      const last = text.charCodeAt(text.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) {
        heldBack = text.slice(-1);
        text = text.slice(0, -1);
      }
      return toStorableText(text);
    },
    flush() {
      const rest = heldBack === "" ? "" : "\uFFFD";
      heldBack = "";
      return rest;
    },
  };
}

/** `text` with U+0000 and every lone surrogate replaced by U+FFFD. */
export function toStorableText(text: string): string {
  return text.toWellFormed().replaceAll("\u0000", "\uFFFD");
}
