import { describe, expect, it } from "vitest";
import { ProviderError, parseRetryAfterMs, providerErrorFromStatus } from "./provider-error.ts";

const headers = (entries: Record<string, string>) => new Headers(entries);

describe("parseRetryAfterMs", () => {
  it("reads delta seconds, including fractions", () => {
    expect(parseRetryAfterMs(headers({ "retry-after": "7" }))).toBe(7000);
    expect(parseRetryAfterMs(headers({ "retry-after": "0.5" }))).toBe(500);
  });

  it("reads an HTTP date relative to now and never goes negative", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    expect(parseRetryAfterMs(headers({ "retry-after": "Wed, 21 Oct 2015 07:28:30 GMT" }), now)).toBe(30_000);
    expect(parseRetryAfterMs(headers({ "retry-after": "Wed, 21 Oct 2015 07:27:00 GMT" }), now)).toBe(0);
  });

  it("prefers OpenAI's retry-after-ms", () => {
    expect(parseRetryAfterMs(headers({ "retry-after": "7", "retry-after-ms": "1234" }))).toBe(1234);
  });

  it("is undefined when absent or unparsable", () => {
    expect(parseRetryAfterMs(headers({}))).toBeUndefined();
    expect(parseRetryAfterMs(headers({ "retry-after": "soon" }))).toBeUndefined();
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
  });
});

describe("providerErrorFromStatus", () => {
  it.each([
    [429, "rate-limited", "PROVIDER_RATE_LIMITED", true],
    [500, "server", "PROVIDER_ERROR", true],
    [503, "server", "PROVIDER_ERROR", true],
    [529, "server", "PROVIDER_ERROR", true],
    [408, "server", "PROVIDER_ERROR", true],
    [401, "auth", "PROVIDER_ERROR", false],
    [403, "auth", "PROVIDER_ERROR", false],
    [400, "bad-request", "PROVIDER_ERROR", false],
    [404, "bad-request", "PROVIDER_ERROR", false],
  ] as const)("maps HTTP %i to %s", (status, kind, code, retryable) => {
    const error = providerErrorFromStatus(status, headers({ "retry-after": "2" }), undefined);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.kind).toBe(kind);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.providerStatus).toBe(status);
    expect(error.retryAfterMs).toBe(status === 429 ? 2000 : undefined);
  });
});

describe("ProviderError", () => {
  it.each([
    ["truncated", "PROVIDER_TRUNCATED", true],
    ["idle-timeout", "PROVIDER_TIMEOUT", true],
    ["connection", "PROVIDER_ERROR", true],
    ["aborted", "PROVIDER_ERROR", false],
  ] as const)("%s has code %s", (kind, code, retryable) => {
    const error = new ProviderError(kind);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.name).toBe("ProviderError");
  });
});
