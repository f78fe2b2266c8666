import { Agent } from "node:http";
import { readFileSync } from "node:fs";
import type { BenchServices } from "./bench-services.ts";
import { openSse, requestJson, type SseConnection } from "./open-sse.ts";
import { sampleProcessTree, type WatchedProcess } from "./process-stats.ts";
import type { PreparedSystem } from "./systems.ts";

export interface IdleRecord {
  system: string;
  connections: number;
  /** The server process whose RSS grew (Sluice: the API). */
  processName: string;
  rssBeforeMb: number;
  rssAfterMb: number;
  rssPerConnectionKb: number;
  /** What the idle connections alone cost per second: DB statements and Redis commands. */
  statementsPerSecond: number;
  redisCommandsPerSecond: number;
  redisConnections: number;
}

const quietWindowMs = 3_000;

/**
 * Opens `count` SSE connections that receive nothing (Sluice: replies queued
 * while no worker runs; baselines: streams that never start), then measures the
 * server's RSS growth and what keeping them open costs per second.
 */
export async function idleConnections(options: {
  services: BenchServices;
  system: string;
  count: number;
  prepared: PreparedSystem;
  processes: WatchedProcess[];
}): Promise<IdleRecord> {
  const { services, prepared, count } = options;
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const server = prepared.processes[0];
  if (!server) throw new Error("no server process to watch");
  const urls: string[] = [];
  if (prepared.kind === "sluice" && prepared.sessionFile) {
    const session = JSON.parse(readFileSync(prepared.sessionFile, "utf8")) as { tokens: string[]; conversationIds: string[] };
    const ids = session.conversationIds.slice(0, count);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < ids.length) {
          const index = next++;
          const id = ids[index];
          const headers = { Authorization: `Bearer ${session.tokens[index] ?? ""}` };
          const accepted = (await requestJson(`${prepared.baseUrl}/api/conversations/${id}/messages`, { agent, method: "POST", body: { content: "idle" }, headers })) as { streamUrl: string };
          urls.push(accepted.streamUrl);
        }
      }),
    );
  } else {
    for (let index = 0; index < count; index += 1) urls.push(`/stream/idle-${index}`);
  }
  global.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = sampleProcessTree(server.pid)?.rssMb ?? Number.NaN;
  const connections: SseConnection[] = [];
  let opened = 0;
  await new Promise<void>((resolve, reject) => {
    setTimeout(() => reject(new Error(`only ${opened} of ${urls.length} idle streams opened in 60 s`)), 60_000).unref();
    for (const url of urls) {
      connections.push(
        openSse(`${prepared.baseUrl}${url}`, { agent }, {
          onOpen: (status) => {
            if (status !== 200) reject(new Error(`idle stream: HTTP ${status}`));
            else if ((opened += 1) === urls.length) resolve();
          },
          onEvent: () => undefined,
          onClose: (error) => reject(error ?? new Error("idle stream closed")),
        }),
      );
    }
  });
  await services.resetCounters();
  await new Promise((resolve) => setTimeout(resolve, quietWindowMs));
  const after = sampleProcessTree(server.pid)?.rssMb ?? Number.NaN;
  const [statements, commands, redisConnections] = await Promise.all([services.statementsByRole(), services.redisCommands(), services.redisConnections()]);
  for (const connection of connections) connection.close();
  agent.destroy();
  const sum = (values: Record<string, number>): number => Object.values(values).reduce((total, value) => total + value, 0);
  const statementsTotal = sum(statements) - (statements.postgres ?? 0);
  return {
    system: options.system,
    connections: count,
    processName: server.name,
    rssBeforeMb: Math.round(before),
    rssAfterMb: Math.round(after),
    rssPerConnectionKb: Math.round(((after - before) * 1024) / count),
    statementsPerSecond: Math.round(statementsTotal / (quietWindowMs / 1000)),
    redisCommandsPerSecond: Math.round(sum(commands) / (quietWindowMs / 1000)),
    redisConnections: sum(redisConnections),
  };
}
