import pg from "pg";

/** A PostgreSQL connection of the test's own; its errors (the server going away, a terminated backend) are expected, not fatal. */
export async function connectToDatabase(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** The worker's final UPDATE of a message (it sets `completed_at`) waiting on a row lock: its backend pids. */
export async function finalSavesWaitingOnLock(observer: pg.Client): Promise<number[]> {
  const result = await observer.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND query ILIKE 'update "messages"%' AND query ILIKE '%"completed_at"%'`,
  );
  return result.rows.map((row) => row.pid);
}
