import { afterAll, beforeAll } from "vitest";
import { startSluice, type InProcessSluice, type ProcessSluice, type StartSluiceOptions } from "./start-sluice.ts";

/**
 * For a test file (or describe block) with one Sluice: starts it before all its tests and stops it
 * after them. The handle it returns forwards to the running Sluice; using it before then throws.
 *
 * @example const sluice = useSluice({ label: "search" }); // then sluice.url in hooks and tests
 */
export function useSluice(options: StartSluiceOptions & { mode: "processes" }, startTimeoutMs?: number): ProcessSluice;
export function useSluice(options: StartSluiceOptions & { mode?: "in-process" }, startTimeoutMs?: number): InProcessSluice;
export function useSluice(options: StartSluiceOptions, startTimeoutMs?: number): InProcessSluice | ProcessSluice {
  let running: InProcessSluice | ProcessSluice | undefined;
  beforeAll(async () => {
    running = options.mode === "processes" ? await startSluice({ ...options, mode: "processes" }) : await startSluice({ ...options, mode: "in-process" });
  }, startTimeoutMs);
  afterAll(async () => {
    await running?.stop();
  });
  return new Proxy({} as InProcessSluice | ProcessSluice, {
    get: (_target, key) => {
      if (!running) throw new Error(`Sluice "${options.label}" is not running (useSluice starts it in beforeAll)`);
      return Reflect.get(running, key) as unknown;
    },
  });
}
