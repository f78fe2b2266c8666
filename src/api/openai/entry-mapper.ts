import type { LogEntry } from "../../streaming/events.ts";

/** A generation's log in another format (OpenAI's events, the AI SDK's chunks), fed entries in order. */
export interface EntryMapper<Output> {
  push(entries: readonly LogEntry[]): Output[];
  /** True once the format's last output was produced; later entries are ignored. */
  readonly finished: boolean;
}

/** Maps entries one at a time with `mapOne` until `isFinished()` turns true. */
export function createEntryMapper<Output>(mapOne: (entry: LogEntry) => Output[], isFinished: () => boolean): EntryMapper<Output> {
  return {
    push: (entries) => {
      const outputs: Output[] = [];
      for (const entry of entries) {
        if (isFinished()) break;
        outputs.push(...mapOne(entry));
      }
      return outputs;
    },
    get finished() {
      return isFinished();
    },
  };
}
