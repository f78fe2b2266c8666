import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { readBodyBatches, type BodyParser } from "./body-batches.ts";

/** One item per read: the read's text. */
const perRead: BodyParser<string> = {
  read: (bytes, into) => {
    into.push(String(bytes));
    return false;
  },
  end: () => undefined,
};

/** Every tick (the body's data events among them) runs before setImmediate. */
const afterTicks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("readBodyBatches", () => {
  it("pauses a body whose items nobody reads, and resumes it when they are taken, losing nothing", async () => {
    const body = new PassThrough({ objectMode: true });
    const batches = readBodyBatches(body, perRead);
    const sent = Array.from({ length: 1500 }, (_, index) => `r${index}`);
    for (const read of sent) body.write(read);
    await afterTicks();
    expect(body.isPaused()).toBe(true);
    const first = await batches.next();
    expect(first.value).toEqual(sent.slice(0, 1024));
    expect(body.isPaused()).toBe(false);
    body.end();
    const rest: string[] = [];
    for await (const batch of batches) rest.push(...batch);
    expect(rest).toEqual(sent.slice(1024));
  });

  it("refuses a second next() while one is pending, and leaves the first one working", async () => {
    const body = new PassThrough({ objectMode: true });
    const batches = readBodyBatches(body, perRead);
    const first = batches.next();
    await expect(batches.next()).rejects.toBeInstanceOf(TypeError);
    body.write("a");
    expect(await first).toEqual({ done: false, value: ["a"] });
  });

  it("is done after return(), even with a failure nobody read", async () => {
    const body = new PassThrough({ objectMode: true });
    const batches = readBodyBatches(body, perRead);
    body.destroy(new Error("reset"));
    await afterTicks();
    await batches.return?.();
    expect(await batches.next()).toEqual({ done: true, value: undefined });
  });
});
