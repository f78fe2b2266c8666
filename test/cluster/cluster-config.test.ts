import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.ts";

const base = { AUTH_SECRET: "x".repeat(32), LOG_LEVEL: "silent" };

describe("Redis Cluster configuration", () => {
  it("REDIS_CLUSTER_NODES wins over REDIS_URL and is parsed into seed nodes", () => {
    const config = loadConfig({ ...base, REDIS_URL: "redis://127.0.0.1:6379", REDIS_CLUSTER_NODES: " 127.0.0.1:7000, localhost:7001,[::1]:7002 " }, "/tmp");
    expect(config.redis.url).toBeUndefined();
    expect(config.redis.clusterNodes).toEqual([
      { host: "127.0.0.1", port: 7000 },
      { host: "localhost", port: 7001 },
      { host: "::1", port: 7002 },
    ]);
  });

  it("accepts redis+cluster://host:port,host:port in REDIS_URL", () => {
    const config = loadConfig({ ...base, REDIS_URL: "redis+cluster://127.0.0.1:7000,127.0.0.1:7001" }, "/tmp");
    expect(config.redis.url).toBeUndefined();
    expect(config.redis.clusterNodes).toEqual([
      { host: "127.0.0.1", port: 7000 },
      { host: "127.0.0.1", port: 7001 },
    ]);
  });

  it("keeps a plain REDIS_URL as a single Redis", () => {
    const config = loadConfig({ ...base, REDIS_URL: "redis://127.0.0.1:6379" }, "/tmp");
    expect(config.redis).toMatchObject({ url: "redis://127.0.0.1:6379", clusterNodes: undefined });
  });

  it("drops empty entries of the seed list (a trailing comma)", () => {
    expect(loadConfig({ ...base, REDIS_CLUSTER_NODES: "127.0.0.1:7000," }, "/tmp").redis.clusterNodes).toEqual([{ host: "127.0.0.1", port: 7000 }]);
  });

  it.each(["127.0.0.1", ",", "host:port", "redis://127.0.0.1:7000"])("rejects the seed list %j, naming the variable", (nodes) => {
    const environment = { ...base, REDIS_CLUSTER_NODES: nodes };
    expect(() => loadConfig(environment, "/tmp")).toThrow(ConfigError);
    expect(() => loadConfig(environment, "/tmp")).toThrow(/REDIS_CLUSTER_NODES/);
  });

  it("rejects a malformed redis+cluster URL", () => {
    expect(() => loadConfig({ ...base, REDIS_URL: "redis+cluster://127.0.0.1" }, "/tmp")).toThrow(/REDIS_URL/);
  });
});
