import type { ConversationSummary } from "../api/types.ts";

export interface ConversationListProps {
  conversations: ConversationSummary[];
  activeId: string | null;
  loading: boolean;
  onOpen: (id: string) => void;
  onDelete: (conversation: ConversationSummary) => void;
}

/** Newest first, as the API returns them; links so middle-click opens a new tab. */
export function ConversationList({ conversations, activeId, loading, onOpen, onDelete }: ConversationListProps) {
  return (
    <nav className="conversation-nav" aria-label="Conversations">
      <ul className="conversation-list" data-testid="conversation-list">
        {conversations.map((conversation) => {
          const title = conversation.title || "New conversation";
          const href = `/c/${encodeURIComponent(conversation.id)}`;
          const active = conversation.id === activeId;
          return (
            <li key={conversation.id} className={active ? "conversation-item active" : "conversation-item"} data-conversation-id={conversation.id}>
              <a
                href={href}
                aria-current={active ? "page" : undefined}
                onClick={(event) => {
                  if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
                  event.preventDefault();
                  onOpen(conversation.id);
                }}
              >
                <span className="conversation-title">{title}</span>
                <time className="conversation-time" dateTime={conversation.updatedAt}>
                  {formatWhen(conversation.updatedAt)}
                </time>
              </a>
              <button
                type="button"
                className="icon-button conversation-delete"
                data-testid="conversation-delete"
                aria-label={`Delete conversation “${title}”`}
                onClick={() => onDelete(conversation)}
              >
                <svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true">
                  <path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" strokeLinejoin="round" />
                </svg>
              </button>
            </li>
          );
        })}
      </ul>
      {!loading && conversations.length === 0 && <p className="conversation-empty">No conversations yet.</p>}
    </nav>
  );
}

function formatWhen(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
  }
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}
