import type { StreamLog } from "../streaming/index.ts";

/** What a continued attempt keeps of the reply (PROTOCOL.md 4.3). */
export interface KeptReply {
  text: string;
  reasoning: string;
}

/**
 * The reply a viewer holds just before the entry at `beforeSeq` (by default, after reading the
 * whole log): the deltas after the last `start` or `reset` (a `continue` keeps what came before
 * it, PROTOCOL.md 3.2). A continued attempt reads it after the attempt at `beforeSeq` began, so
 * no older attempt can append to it any more.
 */
export async function replyBefore(
  streamLog: Pick<StreamLog, "read" | "pageSize">,
  taskId: string,
  beforeSeq = Number.POSITIVE_INFINITY,
): Promise<KeptReply> {
  let text = "";
  let reasoning = "";
  for (let afterSeq = 0; afterSeq < beforeSeq - 1; ) {
    const page = await streamLog.read(taskId, afterSeq, Math.min(streamLog.pageSize, beforeSeq - 1 - afterSeq));
    const last = page?.entries.at(-1);
    if (!page || !last) break;
    for (const { event, seq } of page.entries) {
      if (seq >= beforeSeq) break;
      if (event.type === "start" || event.type === "reset") {
        text = "";
        reasoning = "";
      } else if (event.type === "text-delta") text += event.delta;
      else if (event.type === "reasoning-delta") reasoning += event.delta;
    }
    afterSeq = last.seq;
  }
  return { text, reasoning };
}
