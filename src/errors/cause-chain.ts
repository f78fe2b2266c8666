/** One link of an error's cause chain, as the chain's readers see it. */
export type ErrorLink = { readonly [key: string]: unknown };

/**
 * The error and its causes, outermost first (drizzle wraps the driver's error in
 * `cause`, a SluiceError the failure it maps): at most `maxLinks`, ending at the
 * first link that is not an object. The one walk of a cause chain.
 *
 * @example for (const link of causeChain(error)) if (link.code === "23505") return true;
 */
export function* causeChain(error: unknown, maxLinks = 4): Generator<ErrorLink> {
  let current = error;
  for (let depth = 0; typeof current === "object" && current !== null && depth < maxLinks; depth += 1) {
    yield current as ErrorLink;
    current = (current as ErrorLink).cause;
  }
}

/**
 * The first value `pick` finds in the cause chain, or undefined.
 *
 * @example findInCauseChain(error, (link) => (typeof link.constraint === "string" ? link.constraint : undefined));
 */
export function findInCauseChain<T>(error: unknown, pick: (link: ErrorLink) => T | undefined, maxLinks = 4): T | undefined {
  for (const link of causeChain(error, maxLinks)) {
    const found = pick(link);
    if (found !== undefined) return found;
  }
  return undefined;
}
