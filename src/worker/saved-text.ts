import type { StreamLog } from "../streaming/index.ts";

/** The text of the attempt that began at `startSeq`, as the log holds it. */
export async function loggedText(streamLog: Pick<StreamLog, "read">, taskId: string, startSeq: number): Promise<string> {
  let text = "";
  for (let afterSeq = startSeq; ; ) {
    const page = await streamLog.read(taskId, afterSeq);
    const last = page?.entries.at(-1);
    if (!page || !last) return text;
    for (const entry of page.entries) if (entry.event.type === "text-delta") text += entry.event.delta;
    afterSeq = last.seq;
  }
}

/** Appends saved text in chunks under the event size limit (a replay after `reset`, PROTOCOL.md 3.2). */
export async function appendSavedText(streamLog: Pick<StreamLog, "append">, taskId: string, attempt: number, content: string): Promise<void> {
  const chunks = content.match(/[\s\S]{1,4096}/gu) ?? [];
  if (chunks.length > 0) await streamLog.append(taskId, attempt, chunks.map((delta) => ({ type: "text-delta" as const, delta })));
}
