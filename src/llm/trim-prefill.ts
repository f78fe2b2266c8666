/**
 * Anthropic refuses a prefilled assistant turn that ends in whitespace ("final assistant content
 * cannot end with trailing whitespace"), yet a reply cut by a crash often ends in a space or a
 * newline. The prefill is sent trimmed; the model then usually starts its continuation with the
 * whitespace viewers already have, so up to that many leading whitespace characters of the
 * continuation are dropped: the kept text plus what is streamed reads as the model wrote it.
 *
 * @example
 * const { prefill, skipShownWhitespace } = trimPrefill("Hello, ");  // prefill "Hello,"
 * skipShownWhitespace(" world");  // "world"
 */
export function trimPrefill(continueFrom: string): { prefill: string; skipShownWhitespace(delta: string): string } {
  const prefill = continueFrom.trimEnd();
  let toSkip = continueFrom.length - prefill.length;
  return {
    prefill,
    skipShownWhitespace(delta) {
      let start = 0;
      while (toSkip > 0 && start < delta.length && /\s/u.test(delta.charAt(start))) {
        start += 1;
        toSkip -= 1;
      }
      // The first character that is not whitespace ends the skipping for good.
      if (start < delta.length) toSkip = 0;
      return delta.slice(start);
    },
  };
}
