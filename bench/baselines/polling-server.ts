// Baseline 1, the seed design's "before": the worker INSERTs every chunk into
// PostgreSQL and the API polls that table every 100 ms for each open stream.
// Worker and API keep separate pools, as they would in separate processes.
import pg from "pg";
import { closed, endFrame, generate, runBaseline, sseHeaders, textFrame } from "./baseline-server.ts";

const pollIntervalMs = 100;
const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error("DATABASE_URL is required");
const workerPool = new pg.Pool({ connectionString, max: 10 });
const apiPool = new pg.Pool({ connectionString, max: 10 });
await workerPool.query(`CREATE TABLE IF NOT EXISTS bench_chunks (
  stream_id text NOT NULL, seq integer NOT NULL, data text NOT NULL, done boolean NOT NULL DEFAULT false,
  PRIMARY KEY (stream_id, seq))`);

await runBaseline({
  start: (id, plan) => {
    let seq = 0;
    void generate(plan, async (delta) => {
      await workerPool.query("INSERT INTO bench_chunks (stream_id, seq, data) VALUES ($1, $2, $3)", [id, (seq += 1), delta]);
    }).then(() => workerPool.query("INSERT INTO bench_chunks (stream_id, seq, data, done) VALUES ($1, $2, '', true)", [id, seq + 1]));
  },
  serve: async (id, resume, _request, response) => {
    let after = Number(resume.lastEventId ?? 0);
    let open = true;
    void closed(response).then(() => (open = false));
    response.writeHead(200, sseHeaders);
    response.flushHeaders();
    while (open) {
      const { rows } = await apiPool.query<{ seq: number; data: string; done: boolean }>(
        "SELECT seq, data, done FROM bench_chunks WHERE stream_id = $1 AND seq > $2 ORDER BY seq",
        [id, after],
      );
      for (const row of rows) {
        after = row.seq;
        if (row.done) {
          response.end(endFrame(row.seq));
          return;
        }
        response.write(textFrame(row.data, row.seq));
      }
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    }
  },
  close: async () => {
    await Promise.all([workerPool.end(), apiPool.end()]);
  },
});
