import { afterAll, beforeAll, describe } from "vitest";
import type { ConformanceTarget, StartConformanceTarget } from "./conformance-target.ts";
import { describeReading } from "./reading-suite.ts";
import { describeStatusAndCancel } from "./status-and-cancel-suite.ts";

export type { ConformanceTarget, ScriptedStream, StartConformanceTarget, StreamEndOutcome, StreamEndpoint } from "./conformance-target.ts";

/**
 * Registers the PROTOCOL.md conformance suite against the server `start` brings
 * up: real HTTP, an SSE parser that follows the WHATWG rules, nothing but what
 * the wire shows. A second implementation runs it from a test file of its own:
 *
 * @example describeConformance("my server", async () => ({ target: myTarget, stop: async () => {} }));
 */
export function describeConformance(name: string, start: StartConformanceTarget): void {
  describe(`PROTOCOL.md conformance: ${name}`, () => {
    let started: Awaited<ReturnType<StartConformanceTarget>> | undefined;
    beforeAll(async () => {
      started = await start();
    }, 120_000);
    afterAll(async () => await started?.stop());
    const target = (): ConformanceTarget => {
      if (!started) throw new Error("the conformance target did not start");
      return started.target;
    };
    describeReading(target);
    describeStatusAndCancel(target);
  });
}
