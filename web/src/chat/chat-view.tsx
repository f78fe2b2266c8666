import type { ReactNode } from "react";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import type { ApiClient } from "../api/create-api-client.ts";
import { ErrorNotice } from "../ui/error-notice.tsx";
import { Composer } from "./composer.tsx";
import { ConnectionStatus } from "./connection-status.tsx";
import { liveReasoningDurationMs, type LiveReply } from "./live-reply.ts";
import { MessageView } from "./message-view.tsx";
import type { ReasoningViewProps } from "./reasoning-view.tsx";
import { useConversation } from "./use-conversation.ts";
import { useStickToBottom } from "./use-stick-to-bottom.ts";

export interface ChatViewProps {
  api: ApiClient;
  conversationId: string;
  model: string | undefined;
  onConversationsChanged: () => void;
  header: (title: string, extra: ReactNode, onRename?: (title: string) => Promise<void>) => ReactNode;
  /** Opened from a search result: scroll to this message and highlight it. */
  focusMessage: { messageId: string; requestedAt: number } | null;
}

export function ChatView({ api, conversationId, model, onConversationsChanged, header, focusMessage }: ChatViewProps) {
  const controller = useConversation(api, conversationId, onConversationsChanged);
  const { conversation, live, loadError, actionError, generating } = controller;
  const scrollRef = useRef<HTMLDivElement>(null);
  const { release: releaseStickToBottom } = useStickToBottom(scrollRef, [conversation?.messages.length, live?.text.length, live?.reasoning.length, live?.status]);
  const [highlightedId, setHighlightedId] = useState<string | null>(null);
  const loaded = conversation !== null;
  const messages = conversation?.messages ?? [];
  const { loadOlder, loadingOlder, switchVersion } = controller;
  const canLoadOlder = conversation?.hasMore === true;

  // Older messages go above what is read: remember where it was, and keep it there once they are in.
  const anchorRef = useRef<{ firstId: string | undefined; scrollHeight: number; scrollTop: number } | null>(null);
  const firstId = messages[0]?.id;
  const loadOlderInPlace = useCallback(() => {
    const element = scrollRef.current;
    if (!canLoadOlder || loadingOlder) return;
    if (element) anchorRef.current = { firstId, scrollHeight: element.scrollHeight, scrollTop: element.scrollTop };
    void loadOlder();
  }, [canLoadOlder, loadingOlder, firstId, loadOlder]);
  useLayoutEffect(() => {
    const anchor = anchorRef.current;
    const element = scrollRef.current;
    if (!anchor || !element) return;
    if (anchor.firstId !== firstId) element.scrollTop = anchor.scrollTop + (element.scrollHeight - anchor.scrollHeight);
    if (anchor.firstId !== firstId || !loadingOlder) anchorRef.current = null;
  }, [firstId, loadingOlder]);

  // Runs after the stick-to-bottom effect (declared first); unpinned, so later renders and new
  // text leave the found message in view until the reader scrolls back to the bottom. A message
  // older than the pages shown is loaded page by page first.
  const focusedRef = useRef<{ messageId: string; requestedAt: number } | null>(null);
  useEffect(() => {
    if (!loaded || !focusMessage || focusedRef.current === focusMessage) return;
    const element = scrollRef.current?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(focusMessage.messageId)}"]`);
    if (!element) {
      loadOlderInPlace();
      return;
    }
    focusedRef.current = focusMessage;
    releaseStickToBottom();
    element.scrollIntoView({ block: "center" });
    setHighlightedId(focusMessage.messageId);
  }, [loaded, focusMessage, releaseStickToBottom, messages.length, loadOlderInPlace]);

  // Older messages load when the top of the list scrolls into view (or the page is too short to
  // scroll); a new observer after each page reports the top again if it is still in view.
  const topRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const top = topRef.current;
    if (!top || !canLoadOlder || loadingOlder) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) loadOlderInPlace();
      },
      { root: scrollRef.current, rootMargin: "200px 0px 0px 0px" },
    );
    observer.observe(top);
    return () => observer.disconnect();
  }, [canLoadOlder, loadingOlder, loadOlderInPlace]);

  const lastMessage = messages.at(-1);
  const title = conversation ? conversation.title || "New conversation" : "";

  return (
    <>
      {header(title, <ConnectionStatus connection={controller.connection} />, conversation ? controller.rename : undefined)}
      <div className="chat-scroll" ref={scrollRef}>
        <div className="chat-column">
          {loadError && !conversation && <ErrorNotice error={loadError} />}
          {conversation && messages.length === 0 && (
            <div className="empty-state">
              <h2>What's on your mind?</h2>
              <p>Ask anything. Replies stream in live and survive reloads.</p>
            </div>
          )}
          {canLoadOlder && (
            <div className="load-older" ref={topRef}>
              <button type="button" className="ghost-button" data-testid="load-older" disabled={loadingOlder} onClick={loadOlderInPlace}>
                {loadingOlder ? "Loading earlier messages…" : "Load earlier messages"}
              </button>
            </div>
          )}
          <div className="message-list" aria-live="polite">
            {messages.map((message) => {
              const streamed = live?.messageId === message.id ? live : null;
              const finished = !generating && message === lastMessage && message.role === "assistant";
              return (
                <MessageView
                  key={message.id}
                  id={message.id}
                  highlighted={message.id === highlightedId}
                  usage={message.usage ?? null}
                  role={message.role}
                  content={streamed ? streamed.text : message.content}
                  status={streamed ? streamed.status : message.status}
                  error={streamed ? (streamed.error ?? message.error) : message.error}
                  model={message.role === "assistant" ? message.model : null}
                  reasoning={streamed ? liveReasoning(streamed) : savedReasoning(message.reasoning)}
                  onRegenerate={finished ? () => void controller.regenerate() : undefined}
                  siblings={message.siblings}
                  onSwitchVersion={generating ? undefined : (messageId) => void switchVersion(messageId)}
                  onEdit={message.role === "user" && !generating ? (content) => controller.edit(message.id, content, model) : undefined}
                />
              );
            })}
          </div>
        </div>
      </div>
      <div className="composer-dock">
        <div className="chat-column">
          {actionError && <ErrorNotice error={actionError} onDismiss={controller.dismissError} />}
          <Composer
            key={conversationId}
            generating={generating}
            disabled={!conversation}
            autoFocus
            onSend={(content) => controller.send(content, model)}
            onStop={() => void controller.stop()}
          />
          <p className="composer-footnote">Replies are generated by a language model and can be wrong.</p>
        </div>
      </div>
    </>
  );
}

function liveReasoning(reply: LiveReply): ReasoningViewProps | null {
  if (reply.reasoning === "") return null;
  return { text: reply.reasoning, durationMs: liveReasoningDurationMs(reply), thinking: !reply.ended && reply.text === "", startedAtMs: reply.reasoningStartedAtMs };
}

function savedReasoning(reasoning: { text: string; durationMs: number | null } | null | undefined): ReasoningViewProps | null {
  if (!reasoning || reasoning.text === "") return null;
  return { text: reasoning.text, durationMs: reasoning.durationMs, thinking: false, startedAtMs: null };
}
