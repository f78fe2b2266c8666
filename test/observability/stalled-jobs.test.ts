import { describe, expect, it } from "vitest";
import { findFreePort } from "../../src/embedded/free-port.ts";
import { registerUser } from "../support/client/chat-api.ts";
import { sluiceEnvironment } from "../support/sluice/environment.ts";
import { startSluiceProcess } from "../support/sluice/sluice-process.ts";
import { readSse } from "../support/client/read-sse.ts";

/** The queue gauge's samples by state, as a Prometheus scrape of the API reports them. */
async function queueGauge(baseUrl: string): Promise<Record<string, number>> {
  const body = await (await fetch(`${baseUrl}/metrics`)).text();
  const samples: Record<string, number> = {};
  for (const match of body.matchAll(/^sluice_queue_jobs\{state="([a-z]+)"\} (\S+)$/gm)) samples[match[1] ?? ""] = Number(match[2]);
  return samples;
}

/** Scrapes until `accept` holds; a gauge has no event to wait on, so this polls with a deadline. */
async function scrapeUntil(baseUrl: string, accept: (samples: Record<string, number>) => boolean, what: string, timeoutMs = 30_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await queueGauge(baseUrl);
    if (accept(samples)) return samples;
    if (Date.now() > deadline) throw new Error(`${what}: last scrape ${JSON.stringify(samples)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function stalledTotal(metricsUrl: string): Promise<number> {
  const body = await (await fetch(metricsUrl)).text();
  return Number(/^sluice_jobs_stalled_total (\S+)$/m.exec(body)?.[1] ?? Number.NaN);
}

describe("stalled generation jobs", () => {
  it("a frozen worker's job shows as stalled once its lock expires, and stops being stalled when the job is recovered", async () => {
    const env = {
      ...(await sluiceEnvironment("stalled")),
      // ~30 s of reply: the job stays active for the whole test.
      SIMULATED_TOKENS_PER_SECOND: "10",
      SIMULATED_TOKEN_COUNT: "300",
      JOB_LOCK_DURATION_MS: "2000",
      JOB_STALLED_INTERVAL_MS: "1000",
      SHUTDOWN_GRACE_MS: "500",
    };
    const api = await startSluiceProcess({ role: "api", env });
    const workerMetricsPort = await findFreePort();
    const worker = await startSluiceProcess({ role: "worker", env: { ...env, WORKER_METRICS_PORT: String(workerMetricsPort) } });
    const workerMetrics = `http://127.0.0.1:${workerMetricsPort}/metrics`;
    const baseUrl = api.url ?? "";
    try {
      const session = await registerUser(baseUrl, "stalled");
      const accepted = await session.send((await session.createConversation()).id, "A long answer, please");
      const first = await readSse(`${baseUrl}${accepted.streamUrl}`, { stopAfter: (event) => event.json.type === "text-delta" });
      expect(first.events.at(-1)?.json.type).toBe("text-delta");
      // Running, its worker renews the lock every JOB_LOCK_DURATION_MS / 2: active, not stalled.
      expect(await queueGauge(baseUrl)).toMatchObject({ active: 1, stalled: 0 });
      expect(await stalledTotal(workerMetrics)).toBe(0);

      worker.kill("SIGSTOP");
      const frozen = await scrapeUntil(baseUrl, (samples) => samples.stalled === 1, "stalled after the lock expired");
      expect(frozen.active).toBe(1);

      // Thawed, the worker's stalled check finds its own expired lock and re-queues the job (a new attempt).
      worker.kill("SIGCONT");
      await scrapeUntil(baseUrl, (samples) => samples.stalled === 0, "no longer stalled after SIGCONT");
      // The check that re-queued it counted it.
      await expect.poll(() => stalledTotal(workerMetrics), { timeout: 30_000, interval: 200 }).toBeGreaterThanOrEqual(1);
    } finally {
      worker.kill("SIGCONT");
      await Promise.all([api.stop(), worker.stop()]);
    }
  }, 90_000);
});
