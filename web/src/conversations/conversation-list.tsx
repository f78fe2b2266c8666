import type { ConversationSummary } from "../api/types.ts";
import { LineIcon } from "../ui/line-icon.tsx";

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
                <LineIcon name="trash" size={15} strokeWidth={1.8} />
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
