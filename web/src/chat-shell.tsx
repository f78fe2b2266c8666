import { useCallback, useEffect, useState, type ReactNode } from "react";
import { isApiError } from "./api/api-error.ts";
import type { ApiClient } from "./api/create-api-client.ts";
import type { ConversationSummary, ErrorInfo, MeResponse } from "./api/types.ts";
import type { Session } from "./auth/use-session.ts";
import { ChatView } from "./chat/chat-view.tsx";
import { NewChatView } from "./chat/new-chat-view.tsx";
import { ConversationList } from "./conversations/conversation-list.tsx";
import { SearchBox, SearchResults, useConversationSearch } from "./conversations/conversation-search.tsx";
import { ConversationTitle } from "./conversations/conversation-title.tsx";
import { broadcastToTabs, listenToTabs } from "./navigation/tab-channel.ts";
import { conversationIdFromPath, conversationPath, usePath } from "./navigation/use-path.ts";
import { ErrorNotice } from "./ui/error-notice.tsx";

export function ChatShell({ api, session, onSignOut }: { api: ApiClient; session: Session; onSignOut: () => void }) {
  const [path, navigate] = usePath();
  const conversationId = conversationIdFromPath(path);
  const [me, setMe] = useState<MeResponse | null>(null);
  const [model, setModel] = useState<string | undefined>(undefined);
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [listLoading, setListLoading] = useState(true);
  const [listError, setListError] = useState<ErrorInfo | null>(null);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const search = useConversationSearch(api);
  const refreshSearch = search.refresh;
  /** A search result's message to scroll to and highlight; `requestedAt` lets the same result be opened again. */
  const [focus, setFocus] = useState<{ conversationId: string; messageId: string; requestedAt: number } | null>(null);

  const refreshConversations = useCallback(async () => {
    try {
      const page = await api.listConversations();
      setConversations(page.items);
      setNextCursor(page.nextCursor);
      setListError(null);
    } catch (error) {
      if (isApiError(error)) setListError(error.toInfo());
    } finally {
      setListLoading(false);
    }
  }, [api]);

  const loadMore = useCallback(async () => {
    if (!nextCursor) return;
    try {
      const page = await api.listConversations(nextCursor);
      setConversations((previous) => [...previous, ...page.items.filter((item) => !previous.some((known) => known.id === item.id))]);
      setNextCursor(page.nextCursor);
    } catch (error) {
      if (isApiError(error)) setListError(error.toInfo());
    }
  }, [api, nextCursor]);

  useEffect(() => {
    void refreshConversations();
    api
      .me()
      .then((response) => {
        setMe(response);
        setModel((current) => current ?? response.settings.defaultModel ?? undefined);
      })
      .catch(() => undefined);
    return listenToTabs(() => {
      void refreshConversations();
      refreshSearch();
    });
  }, [api, refreshConversations, refreshSearch]);

  const open = useCallback(
    (id: string | null) => {
      navigate(id === null ? "/" : conversationPath(id));
      setSidebarOpen(false);
    },
    [navigate],
  );

  const openResult = useCallback(
    (id: string, messageId: string | null) => {
      setFocus(messageId === null ? null : { conversationId: id, messageId, requestedAt: Date.now() });
      open(id);
    },
    [open],
  );

  const remove = useCallback(
    async (conversation: ConversationSummary) => {
      try {
        await api.deleteConversation(conversation.id);
        setConversations((previous) => previous.filter((item) => item.id !== conversation.id));
        broadcastToTabs({ type: "conversations-changed" });
        if (conversation.id === conversationId) navigate("/", { replace: true });
      } catch (error) {
        if (isApiError(error)) setListError(error.toInfo());
      }
    },
    [api, conversationId, navigate],
  );

  const onConversationsChanged = useCallback(() => {
    void refreshConversations();
    // A finished reply changes the account's token total.
    api
      .me()
      .then(setMe)
      .catch(() => undefined);
    refreshSearch();
    broadcastToTabs({ type: "conversations-changed" });
  }, [api, refreshConversations, refreshSearch]);

  const header = (title: string, extra: ReactNode, onRename?: (title: string) => Promise<void>) => (
    <header className="chat-header">
      <button type="button" className="icon-button menu-button" aria-label="Open conversations" aria-expanded={sidebarOpen} onClick={() => setSidebarOpen(true)}>
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
          <path d="M4 7h16M4 12h16M4 17h16" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
        </svg>
      </button>
      <ConversationTitle key={conversationId ?? "new"} title={title} onRename={onRename} />
      {extra}
      {me && me.models.length > 1 && (
        <label className="model-picker">
          <span className="visually-hidden">Model</span>
          <select value={model ?? ""} onChange={(event) => setModel(event.target.value)}>
            {me.models.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
      )}
    </header>
  );

  const email = me?.user.email ?? session.user.email;
  return (
    <div className={sidebarOpen ? "shell sidebar-open" : "shell"}>
      <aside className="sidebar" aria-label="Sidebar">
        <div className="sidebar-top">
          <div className="brand">
            <span className="brand-mark" aria-hidden="true" />
            <span>Sluice</span>
          </div>
          <button type="button" className="icon-button sidebar-close" aria-label="Close conversations" onClick={() => setSidebarOpen(false)}>
            ×
          </button>
        </div>
        <button type="button" className="new-conversation" data-testid="new-conversation" onClick={() => open(null)}>
          <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
            <path d="M12 5v14M5 12h14" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" />
          </svg>
          New conversation
        </button>
        <SearchBox search={search} />
        {listError && <ErrorNotice error={listError} onDismiss={() => setListError(null)} />}
        {search.active ? (
          <SearchResults search={search} onOpen={openResult} />
        ) : (
          <ConversationList
            conversations={conversations}
            activeId={conversationId}
            loading={listLoading}
            onOpen={open}
            onDelete={(conversation) => void remove(conversation)}
          />
        )}
        {!search.active && nextCursor && (
          <button type="button" className="ghost-button load-more" onClick={() => void loadMore()}>
            Show older
          </button>
        )}
        <div className="sidebar-footer">
          <span className="account-summary">
            <span className="account-email" title={email}>
              {email}
            </span>
            {me?.usage && (
              <span className="account-usage" data-testid="account-usage" title={`${me.usage.inputTokens} tokens in, ${me.usage.outputTokens} tokens out over ${me.usage.messages} replies`}>
                {formatTokens(me.usage.inputTokens + me.usage.outputTokens)} tokens used
              </span>
            )}
          </span>
          <button type="button" className="ghost-button" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </aside>
      <div className="sidebar-backdrop" onClick={() => setSidebarOpen(false)} aria-hidden="true" />
      <main className="chat">
        {conversationId === null ? (
          <NewChatView
            api={api}
            model={model}
            greetingName={email.split("@")[0] ?? ""}
            onStarted={(id) => {
              void refreshConversations();
              navigate(conversationPath(id));
            }}
            header={header}
          />
        ) : (
          <ChatView
            key={conversationId}
            api={api}
            conversationId={conversationId}
            model={model}
            onConversationsChanged={onConversationsChanged}
            header={header}
            focusMessage={focus?.conversationId === conversationId ? focus : null}
          />
        )}
      </main>
    </div>
  );
}

function formatTokens(count: number): string {
  return new Intl.NumberFormat(undefined, { notation: count >= 10_000 ? "compact" : "standard" }).format(count);
}
