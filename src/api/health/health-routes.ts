import type { App } from "../app-type.ts";
import { SluiceError } from "../../errors/catalog.ts";

export interface ReadinessProbe {
  /** Resolves when the dependency answers; rejects with a reason otherwise. */
  readonly name: string;
  check(): Promise<void>;
}

/** `/healthz`: the process is alive. `/readyz`: PostgreSQL and Redis answer and migrations are applied. */
export function registerHealthRoutes(app: App, probes: readonly ReadinessProbe[], timeoutMs: number): void {
  app.get("/healthz", { schema: { hide: true } }, () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async () => {
    const results = await Promise.all(probes.map(async (probe) => ({ name: probe.name, error: await failureOf(probe, timeoutMs) })));
    const failures = results.filter((result) => result.error !== undefined);
    if (failures.length > 0) {
      const summary = failures.map((failure) => `${failure.name}: ${failure.error}`).join("; ");
      throw new SluiceError("NOT_READY", `Not ready: ${summary}`, { details: { checks: Object.fromEntries(results.map((r) => [r.name, r.error ?? "ok"])) } });
    }
    return { status: "ready", checks: Object.fromEntries(results.map((result) => [result.name, "ok"])) };
  });
}

async function failureOf(probe: ReadinessProbe, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe.check(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}
