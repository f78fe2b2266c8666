import type { Cluster } from "ioredis";

/**
 * Readiness for Redis Cluster: PING every master this client knows. It throws
 * only when none answers. One master down (no replica) makes just its slots
 * unavailable; streams on the other shards keep working, and every API process
 * shares the same cluster, so taking them all out of rotation would turn a
 * partial outage into a full one. The failing masters are named in the error
 * logs (`Redis connection error`) and in `redis_errors_total`.
 */
export async function pingCluster(cluster: Cluster): Promise<void> {
  const masters = cluster.nodes("master");
  if (masters.length === 0) {
    await cluster.ping();
    return;
  }
  const results = await Promise.allSettled(masters.map((node) => node.ping()));
  if (results.some((result) => result.status === "fulfilled")) return;
  throw new Error(`no Redis Cluster master answers PING (${masters.length} known)`);
}
