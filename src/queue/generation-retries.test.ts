import { UnrecoverableError } from "bullmq";
import { DrizzleQueryError } from "drizzle-orm/errors";
import { describe, expect, it } from "vitest";
import { SluiceError } from "../errors/catalog.ts";
import { DatabaseUnavailableError } from "../storage/database-errors.ts";
import { finalFailureCode, GenerationGaveUp, isTransientJobFailure, retryOrGiveUp } from "./generation-retries.ts";

const withCode = (code: string): Error => Object.assign(new Error("x"), { code });
const replyError = (message: string): Error => Object.assign(new Error(message), { name: "ReplyError" });

describe("which job failures are retried as a new attempt", () => {
  it("dependency failures are transient: PostgreSQL unreachable or restarting, Redis down or full", () => {
    for (const error of [
      new DatabaseUnavailableError(new Error("timeout")),
      new DrizzleQueryError("update", [], withCode("ECONNRESET")),
      withCode("57P01"),
      withCode("08006"),
      new SluiceError("SERVICE_UNAVAILABLE"),
      new SluiceError("STORE_FULL"),
      replyError("OOM command not allowed when used memory > 'maxmemory'."),
      new Error("Connection is closed."),
    ]) expect(isTransientJobFailure(error), String(error)).toBe(true);
  });

  it("everything else is permanent: other SQLSTATEs, refused Redis commands, other codes, bugs", () => {
    for (const error of [
      withCode("22021"),
      withCode("23505"),
      replyError("ERR Error running script"),
      new SluiceError("STREAM_TOO_LARGE"),
      new SluiceError("STALE_ATTEMPT"),
      new TypeError("undefined is not a function"),
      "a string",
    ]) expect(isTransientJobFailure(error), String(error)).toBe(false);
  });

  it("a transient failure is rethrown while attempts are left; then, or for a permanent one, the job gives up with the code to end with", () => {
    const down = new DatabaseUnavailableError(new Error("refused"));
    expect(retryOrGiveUp(down, 0, 3)).toBe(down);
    expect(retryOrGiveUp(down, 1, 3)).toBe(down);
    const last = retryOrGiveUp(down, 2, 3);
    expect(last).toBeInstanceOf(UnrecoverableError);
    expect(last).toMatchObject({ endCode: "SERVICE_UNAVAILABLE", cause: down });
    expect(retryOrGiveUp(new SluiceError("STREAM_TOO_LARGE"), 0, 3)).toMatchObject({ endCode: "STREAM_TOO_LARGE" });
    expect(retryOrGiveUp(new TypeError("bug"), 0, 3)).toMatchObject({ endCode: "INTERNAL" });
  });

  it("a failed event is final when BullMQ will not retry: stalled past the limit, given up, or out of attempts", () => {
    const job = { deferredFailure: "", attemptsMade: 1, opts: { attempts: 50 } };
    expect(finalFailureCode(job, new DatabaseUnavailableError(undefined))).toBeUndefined();
    expect(finalFailureCode({ ...job, deferredFailure: "job stalled more than allowable limit" }, new UnrecoverableError("job stalled more than allowable limit"))).toBe("WORKER_LOST");
    expect(finalFailureCode(job, new GenerationGaveUp(new Error("x"), "SERVICE_UNAVAILABLE"))).toBe("SERVICE_UNAVAILABLE");
    expect(finalFailureCode({ ...job, opts: { attempts: 1 } }, new DatabaseUnavailableError(undefined))).toBe("SERVICE_UNAVAILABLE");
  });
});
