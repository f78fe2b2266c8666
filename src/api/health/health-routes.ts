import type { App } from "../app-type.ts";
import { SluiceError } from "../../errors/catalog.ts";
import { sleep, systemClock, type Clock } from "../../time/clock.ts";

export interface ReadinessProbe {
  /** Resolves when the dependency answers; rejects with a reason otherwise. */
  readonly name: string;
  check(): Promise<void>;
}

/**
 * `/healthz`: the process is alive. `/readyz`: PostgreSQL and Redis answer and migrations are applied.
 * Both are public (a load balancer reaches them through the proxy), so a failure answers only
 * 503 NOT_READY: a dependency's error text can name hosts, users and internals, and goes to the log.
 */
export function registerHealthRoutes(app: App, probes: readonly ReadinessProbe[], timeoutMs: number, clock: Clock = systemClock): void {
  app.get("/healthz", { schema: { hide: true } }, () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async (request) => {
    const results = await Promise.all(probes.map(async (probe) => ({ name: probe.name, error: await failureOf(probe, timeoutMs, clock) })));
    const failures = results.filter((result) => result.error !== undefined);
    if (failures.length > 0) {
      for (const failure of failures) request.log.warn({ check: failure.name, err: failure.error }, "not ready");
      throw new SluiceError("NOT_READY");
    }
    return { status: "ready", checks: Object.fromEntries(results.map((result) => [result.name, "ok"])) };
  });
}

/** The probe's error (or a timeout), undefined when it answered in time. */
async function failureOf(probe: ReadinessProbe, timeoutMs: number, clock: Clock): Promise<unknown> {
  const answered = new AbortController();
  const timedOut = sleep(clock, timeoutMs, answered.signal).then(() => {
    throw new Error(`no answer within ${timeoutMs} ms`);
  });
  try {
    await Promise.race([probe.check(), timedOut]);
    return undefined;
  } catch (error) {
    return error ?? new Error("failed");
  } finally {
    // Releases the timer; the race has settled, so the sleep's abort rejection is already handled.
    answered.abort();
  }
}
