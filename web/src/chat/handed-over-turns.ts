import type { SendMessageResponse } from "../api/types.ts";
import type { StartedTurn } from "../api/turn-stream.ts";

/** A stream nobody took by then is closed: its page never mounted (the navigation failed or went elsewhere). */
const unclaimedTimeoutMs = 10_000;

const waiting = new Map<string, { turn: StartedTurn<SendMessageResponse>; timer: ReturnType<typeof setTimeout> }>();

/**
 * The new-chat page starts a conversation's first reply, then navigates to the conversation's
 * page; the POST's stream (PROTOCOL.md 2.4) is passed on through here, so that page reads it
 * instead of opening `streamUrl` again.
 */
export function handOverTurn(conversationId: string, turn: StartedTurn<SendMessageResponse>): void {
  if (turn.events === null) return;
  takeHandedOverTurn(conversationId)?.events?.cancel();
  const timer = setTimeout(() => takeHandedOverTurn(conversationId)?.events?.cancel(), unclaimedTimeoutMs);
  waiting.set(conversationId, { turn, timer });
}

export function takeHandedOverTurn(conversationId: string): StartedTurn<SendMessageResponse> | undefined {
  const entry = waiting.get(conversationId);
  if (entry === undefined) return undefined;
  waiting.delete(conversationId);
  clearTimeout(entry.timer);
  return entry.turn;
}
