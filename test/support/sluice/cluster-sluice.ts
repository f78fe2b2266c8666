import { inject } from "vitest";
import { startTestRuntime, type TestRuntime } from "./start-test-runtime.ts";
import { startRedisCluster, type RedisClusterRig } from "../servers/redis-cluster.ts";

export interface ClusterSluice {
  readonly cluster: RedisClusterRig;
  readonly sluice: TestRuntime;
  /** Index of the master that owns the key's slot (CLUSTER KEYSLOT, asked of the cluster itself). */
  ownerOf(key: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A 3-master Redis Cluster and one in-process `sluice start` on it
 * (REDIS_CLUSTER_NODES; the inherited REDIS_URL must be ignored).
 */
export async function startClusterSluice(label: string, env: Record<string, string>): Promise<ClusterSluice> {
  const cluster = await startRedisCluster({ executable: inject("redisExecutable") });
  try {
    const sluice = await startTestRuntime(label, { REDIS_CLUSTER_NODES: cluster.seedList, ...env });
    return {
      cluster,
      sluice,
      ownerOf: async (key) => {
        const slot = Number((await cluster.cli(0, "CLUSTER", "KEYSLOT", key)).trim());
        const owner = cluster.masters.findIndex((master) => master.slotRanges.some(([first, last]) => slot >= first && slot <= last));
        if (owner === -1) throw new Error(`no master owns slot ${slot}`);
        return owner;
      },
      stop: async () => {
        try {
          await sluice.stop();
        } finally {
          await cluster.stop();
        }
      },
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
