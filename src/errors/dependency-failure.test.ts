import { ReplyError as UntypedReplyError } from "ioredis";
import { describe, expect, it } from "vitest";
import { SluiceError } from "./catalog.ts";
import { callRedis, isRedisOutOfMemory, redisFailure } from "./dependency-failure.ts";

// ioredis types its ReplyError (from redis-errors) as `any`; it takes the reply text.
const ReplyError = UntypedReplyError as new (message: string) => Error;
const oomReply = (): Error => new ReplyError("OOM command not allowed when used memory > 'maxmemory'.");

describe("redisFailure", () => {
  it("maps Redis's OOM reply, plain or from a script, to STORE_FULL (503, retryable)", () => {
    const scriptReply = new ReplyError("OOM command not allowed when used memory > 'maxmemory'. script: 5849fad0, on @user_script:1.");
    for (const error of [oomReply(), scriptReply]) {
      expect(isRedisOutOfMemory(error)).toBe(true);
      expect(redisFailure(error)).toMatchObject({ code: "STORE_FULL", status: 503, retryable: true });
    }
  });

  it("sees an OOM reply wrapped as the cause of a SluiceError (the stream writer wraps log failures)", () => {
    const wrapped = new SluiceError("SERVICE_UNAVAILABLE", "The stream log could not be written.", { cause: oomReply() });
    expect(redisFailure(wrapped).code).toBe("STORE_FULL");
  });

  it("keeps other SluiceErrors and maps anything else to SERVICE_UNAVAILABLE", () => {
    const notFound = new SluiceError("STREAM_NOT_FOUND");
    expect(redisFailure(notFound)).toBe(notFound);
    expect(redisFailure(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" })).code).toBe("SERVICE_UNAVAILABLE");
    // Only Redis's reply counts, not any error whose text happens to start with OOM.
    expect(isRedisOutOfMemory(new Error("OOM command not allowed"))).toBe(false);
    expect(redisFailure(new ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value")).code).toBe("SERVICE_UNAVAILABLE");
  });

  it("callRedis rejects with the mapped error", async () => {
    await expect(callRedis(() => Promise.reject(oomReply()))).rejects.toMatchObject({ code: "STORE_FULL" });
    await expect(callRedis(() => Promise.resolve(7))).resolves.toBe(7);
  });
});
