export const defaultKeyPrefix = "sluice:";

export interface StreamKeys {
  /** Redis Stream: one entry per event, explicit id `<seq>-0`. */
  log: string;
  /** Hash: incarnation, attempt, lastSeq, bytes, state (live | ended), endSeq. */
  meta: string;
  /** Pub/sub channel (or shard channel) announcing appended entries. */
  notify: string;
}

/**
 * The Redis names of one generation's stream. The `{taskId}` hash tag keeps all
 * three in one cluster slot, so one script can touch them atomically and
 * SPUBLISH reaches the shard that owns the keys.
 */
export function streamKeys(keyPrefix: string, taskId: string): StreamKeys {
  const base = `${keyPrefix}{${taskId}}`;
  return { log: `${base}:log`, meta: `${base}:meta`, notify: `${base}:notify` };
}
