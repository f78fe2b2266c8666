// The start path, round trip by round trip: one message at a time to a Sluice on the real provider
// path, with Redis MONITOR watching every command and PostgreSQL's pg_stat_statements timing every
// statement. Prints, for the median message, when each Redis command arrived after the POST was
// sent (and from which connection), the client's own milestones, and the mean server time of each
// statement. This is how BENCHMARKS.md counts the round trips between a POST and its first token.
//   node bench/probes/start-path-timeline.ts [split|start|embedded] [messages=30] [--pause=ms]
// (--pause: the quiet between messages, 200 ms by default; 35000 shows what a message after a
// quiet half-minute pays: connections to PostgreSQL and to the provider that idled out)
// (embedded: `sluice start` on PGlite, as `npm start` runs; no statement times then)
// MONITOR slows Redis down: read the order and the gaps, not the absolute figures.
import { Agent } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { startBenchServices } from "../lib/bench-services.ts";
import { sampleProcess } from "../lib/process-stats.ts";
import { openSse, requestJson } from "../lib/open-sse.ts";
import { createSluiceSystem } from "../lib/sluice-system.ts";

const embedded = process.argv[2] === "embedded";
const mode = process.argv[2] === "start" || embedded ? "start" : "split";
const messages = Number(process.argv[3] ?? 30);
// --profile: node --cpu-prof for Sluice's processes; the profiles' folder is printed at the end.
const profile = process.argv.includes("--profile");
const pauseMs = Number(process.argv.find((argument) => argument.startsWith("--pause="))?.slice(8) ?? 200);
const wallMs = (): number => performance.timeOrigin + performance.now();

const resultsDirectory = mkdtempSync(join(tmpdir(), "sluice-start-path-"));
mkdirSync(join(resultsDirectory, "logs"));
const services = await startBenchServices();
const system = await createSluiceSystem(
  embedded
    ? { name: "sluice-openai-embedded", provider: "openai", mode, database: "embedded" }
    : { name: mode === "start" ? "sluice-openai-start" : "sluice-openai-split", provider: "openai", mode },
  { services, resultsDirectory, conversations: messages, profile, logLevel: "warn", sluiceEnv: {} },
);
try {
  const prepared = await system.prepare(50, 5);
  const session = JSON.parse(readFileSync(prepared.sessionFile ?? "", "utf8")) as { tokens: string[]; conversationIds: string[] };
  const names = new Map<string, string>();
  const admin = new Redis(services.redis.url);
  // monitor() opens a connection of its own; the duplicate it is called on must be closed too,
  // or it reconnects forever once the services stop and the probe never exits.
  const monitorParent = admin.duplicate();
  const monitor = await monitorParent.monitor();
  const commands: Array<{ at: number; source: string; args: string[] }> = [];
  monitor.on("monitor", (time: string, args: string[], source: string) => commands.push({ at: Number(time) * 1000, source, args }));
  const agent = new Agent({ keepAlive: true });
  await services.resetCounters();

  const cpuBefore = new Map(prepared.processes.map((watched) => [watched.name, sampleProcess(watched.pid)?.cpuSeconds ?? 0]));
  interface Milestones { sent: number; answered: number; headers: number; start: number; firstToken: number }
  const runs: Milestones[] = [];
  for (let index = 0; index < messages; index += 1) {
    const headers = { Authorization: `Bearer ${session.tokens[index] ?? ""}` };
    const sent = wallMs();
    const accepted = (await requestJson(`${prepared.baseUrl}/api/conversations/${session.conversationIds[index] ?? ""}/messages`, {
      agent, method: "POST", headers, body: { content: "bench tokens_per_second=50 token_count=5" },
    })) as { streamUrl: string };
    const answered = wallMs();
    const milestones = await new Promise<Milestones>((resolve, reject) => {
      const seen: Partial<Milestones> = { sent, answered };
      const connection = openSse(new URL(accepted.streamUrl, prepared.baseUrl).toString(), { agent }, {
        onOpen: () => (seen.headers = wallMs()),
        onEvent: (type) => {
          if (type === "start") seen.start = wallMs();
          if (type === "text-delta" && seen.firstToken === undefined) {
            seen.firstToken = wallMs();
            connection.close();
            resolve(seen as Milestones);
          }
        },
        onClose: (error) => reject(error ?? new Error("the stream closed before its first token")),
      });
    });
    runs.push(milestones);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  const cpuPerMessage = prepared.processes.map((watched) => `${watched.name} ${((((sampleProcess(watched.pid)?.cpuSeconds ?? 0) - (cpuBefore.get(watched.name) ?? 0)) * 1000) / messages).toFixed(2)} ms`);
  for (const line of String(await admin.client("LIST")).split("\n")) {
    const addr = /addr=(\S+)/.exec(line)?.[1];
    const name = /name=(\S*)/.exec(line)?.[1];
    if (addr) names.set(addr, name || "(unnamed)");
  }
  monitor.disconnect();
  monitorParent.disconnect();

  const sorted = [...runs].sort((a, b) => a.firstToken - a.sent - (b.firstToken - b.sent));
  const median = sorted[Math.floor(sorted.length / 2)];
  if (!median) throw new Error("no message completed");
  const offsets = (pick: (run: Milestones) => number): string => {
    const values = runs.map((run) => pick(run) - run.sent).sort((a, b) => a - b);
    return `p50 ${values[Math.floor(values.length / 2)]?.toFixed(2)} ms`;
  };
  console.log(`${mode}: ${runs.length} messages, one at a time, ${pauseMs} ms apart`);
  console.log(`  POST answered ${offsets((run) => run.answered)}, SSE headers ${offsets((run) => run.headers)}, start ${offsets((run) => run.start)}, first token ${offsets((run) => run.firstToken)}`);
  console.log(`  CPU per message (everything the process did meanwhile, MONITOR included): ${cpuPerMessage.join(", ")}`);
  console.log(`\nthe median message (first token at ${(median.firstToken - median.sent).toFixed(2)} ms), every Redis command in order:`);
  const marks = [
    { at: median.answered, label: "client: POST answered" },
    { at: median.headers, label: "client: SSE headers" },
    { at: median.start, label: "client: start event" },
    { at: median.firstToken, label: "client: first token" },
  ];
  // --after=<ms>: also list what follows the first token (the rest of the reply, the save, the job's end).
  const afterMs = Number(process.argv.find((argument) => argument.startsWith("--after="))?.slice(8) ?? 2);
  const window = commands.filter((command) => command.at >= median.sent - 1 && command.at <= median.firstToken + afterMs);
  const lines = [
    ...window.map((command) => ({ at: command.at, label: `${(names.get(command.source) ?? command.source).padEnd(28)} ${command.args.slice(0, 2).join(" ").slice(0, 60)}` })),
    ...marks,
  ].sort((a, b) => a.at - b.at);
  for (const line of lines) console.log(`  +${(line.at - median.sent).toFixed(2).padStart(7)} ms  ${line.label}`);

  const database = new pg.Client({ connectionString: services.postgres.url });
  await database.connect();
  const { rows } = await database.query<{ role: string; calls: string; mean: number; query: string }>(
    "SELECT r.rolname AS role, s.calls, s.mean_exec_time AS mean, s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname LIKE 'sluice%' ORDER BY s.calls DESC LIMIT 12",
  );
  await database.end();
  console.log(`\nPostgreSQL statements for ${runs.length} messages (mean time in the server):`);
  for (const row of rows) console.log(`  ${row.role} ${row.calls}x ${row.mean.toFixed(3)} ms  ${row.query.replace(/\s+/g, " ").slice(0, 100)}`);
  agent.destroy();
  admin.disconnect();
} finally {
  if (profile) console.log(`profiles: ${join(resultsDirectory, "profiles")}`);
  await system.stop();
  await services.stop();
  // The logs and the system's files go with the run; the profiles, when asked for, stay to be read.
  if (!profile) rmSync(resultsDirectory, { recursive: true, force: true });
}
