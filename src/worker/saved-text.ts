import type { StreamLog } from "../streaming/index.ts";

/** The answer and the reasoning of the attempt that began at `startSeq`, as the log holds them. */
export async function loggedReply(streamLog: Pick<StreamLog, "read">, taskId: string, startSeq: number): Promise<{ text: string; reasoning: string }> {
  let text = "";
  let reasoning = "";
  for (let afterSeq = startSeq; ; ) {
    const page = await streamLog.read(taskId, afterSeq);
    const last = page?.entries.at(-1);
    if (!page || !last) return { text, reasoning };
    for (const { event } of page.entries) {
      if (event.type === "text-delta") text += event.delta;
      else if (event.type === "reasoning-delta") reasoning += event.delta;
    }
    afterSeq = last.seq;
  }
}

/** The text of the attempt that began at `startSeq`, as the log holds it. */
export async function loggedText(streamLog: Pick<StreamLog, "read">, taskId: string, startSeq: number): Promise<string> {
  return (await loggedReply(streamLog, taskId, startSeq)).text;
}

/**
 * Appends a saved message in chunks under the event size limit, its reasoning first
 * (a replay after `reset`, PROTOCOL.md 3.2).
 */
export async function appendSavedText(streamLog: Pick<StreamLog, "append">, taskId: string, attempt: number, content: string, reasoning = ""): Promise<void> {
  const chunks = (text: string) => text.match(/[\s\S]{1,4096}/gu) ?? [];
  const events = [
    ...chunks(reasoning).map((delta) => ({ type: "reasoning-delta" as const, delta })),
    ...chunks(content).map((delta) => ({ type: "text-delta" as const, delta })),
  ];
  if (events.length > 0) await streamLog.append(taskId, attempt, events);
}
