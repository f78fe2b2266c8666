/**
 * Tells other tabs of this browser that something changed, so a second tab on the
 * same conversation starts streaming a reply the first tab asked for, and sidebars
 * stay current. Each tab still opens at most one SSE connection (its own open
 * conversation's active generation).
 */
export type TabMessage =
  | { type: "conversation-changed"; conversationId: string }
  | { type: "conversations-changed" };

const channelName = "sluice-tabs";

export function broadcastToTabs(message: TabMessage): void {
  if (typeof BroadcastChannel === "undefined") return;
  const channel = new BroadcastChannel(channelName);
  channel.postMessage(message);
  channel.close();
}

/** Subscribes to messages from other tabs; returns the unsubscribe function. */
export function listenToTabs(listener: (message: TabMessage) => void): () => void {
  if (typeof BroadcastChannel === "undefined") return () => undefined;
  const channel = new BroadcastChannel(channelName);
  channel.onmessage = (event: MessageEvent<TabMessage>) => listener(event.data);
  return () => channel.close();
}
