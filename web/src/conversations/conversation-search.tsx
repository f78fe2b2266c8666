import { useCallback, useEffect, useRef, useState } from "react";
import { isApiError } from "../api/api-error.ts";
import type { ApiClient } from "../api/create-api-client.ts";
import type { ErrorInfo, SearchResult } from "../api/types.ts";
import { ErrorNotice } from "../ui/error-notice.tsx";

/** Typing pauses this long before a search is sent, so a word typed is one request, not five. */
const searchDelayMs = 250;

export interface SearchState {
  query: string;
  setQuery: (query: string) => void;
  /** True while the query has words: the sidebar shows results instead of the list. */
  active: boolean;
  results: SearchResult[];
  nextCursor: string | null;
  loading: boolean;
  error: ErrorInfo | null;
  loadMore: () => Promise<void>;
  /** Runs the query again (a conversation was renamed, replied to or deleted). */
  refresh: () => void;
}

/** GET /api/conversations/search for the typed query; answers for an older query are dropped. */
export function useConversationSearch(api: ApiClient): SearchState {
  const [query, setQuery] = useState("");
  const [results, setResults] = useState<SearchResult[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [version, setVersion] = useState(0);
  const latestRef = useRef(0);
  const trimmed = query.trim();
  const refresh = useCallback(() => setVersion((current) => current + 1), []);

  useEffect(() => {
    const request = ++latestRef.current;
    if (trimmed === "") {
      setResults([]);
      setNextCursor(null);
      setError(null);
      setLoading(false);
      return;
    }
    setLoading(true);
    const timer = setTimeout(() => {
      api
        .searchConversations(trimmed)
        .then((page) => {
          if (request !== latestRef.current) return;
          setResults(page.items);
          setNextCursor(page.nextCursor);
          setError(null);
        })
        .catch((failure: unknown) => {
          if (request !== latestRef.current) return;
          setResults([]);
          setNextCursor(null);
          if (isApiError(failure)) setError(failure.toInfo());
        })
        .finally(() => {
          if (request === latestRef.current) setLoading(false);
        });
    }, searchDelayMs);
    return () => clearTimeout(timer);
  }, [api, trimmed, version]);

  const loadMore = useCallback(async () => {
    if (!nextCursor) return;
    const request = latestRef.current;
    try {
      const page = await api.searchConversations(trimmed, nextCursor);
      if (request !== latestRef.current) return;
      setResults((previous) => [...previous, ...page.items.filter((item) => !previous.some((known) => known.conversation.id === item.conversation.id))]);
      setNextCursor(page.nextCursor);
    } catch (failure) {
      if (isApiError(failure) && request === latestRef.current) setError(failure.toInfo());
    }
  }, [api, nextCursor, trimmed]);

  return { query, setQuery, active: trimmed !== "", results, nextCursor, loading, error, loadMore, refresh };
}

export function SearchBox({ search }: { search: SearchState }) {
  return (
    <div className="search-box" role="search">
      <svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true">
        <circle cx="11" cy="11" r="6.5" fill="none" stroke="currentColor" strokeWidth="1.8" />
        <path d="M16 16l4.5 4.5" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
      </svg>
      <input
        type="search"
        className="search-input"
        data-testid="conversation-search"
        placeholder="Search conversations"
        aria-label="Search conversations"
        value={search.query}
        maxLength={200}
        onChange={(event) => search.setQuery(event.target.value)}
        onKeyDown={(event) => {
          if (event.key === "Escape") search.setQuery("");
        }}
      />
    </div>
  );
}

/** The results in place of the conversation list; a result opens its conversation at the matching message. */
export function SearchResults({ search, onOpen }: { search: SearchState; onOpen: (conversationId: string, messageId: string | null) => void }) {
  return (
    <nav className="conversation-nav" aria-label="Search results">
      {search.error && <ErrorNotice error={search.error} />}
      <ul className="conversation-list search-results" data-testid="search-results" aria-busy={search.loading}>
        {search.results.map((result) => {
          const title = result.conversation.title || "New conversation";
          const href = `/c/${encodeURIComponent(result.conversation.id)}`;
          return (
            <li key={result.conversation.id} className="conversation-item search-result" data-testid="search-result" data-conversation-id={result.conversation.id}>
              <a
                href={href}
                onClick={(event) => {
                  if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
                  event.preventDefault();
                  onOpen(result.conversation.id, result.message?.id ?? null);
                }}
              >
                <span className="conversation-title">{title}</span>
                {result.message && (
                  <span className="search-snippet" data-testid="search-snippet">
                    <span className="search-role">{result.message.role === "user" ? "You: " : "Reply: "}</span>
                    <Highlighted text={result.message.snippet} ranges={result.message.highlights} />
                  </span>
                )}
              </a>
            </li>
          );
        })}
      </ul>
      {!search.loading && !search.error && search.results.length === 0 && (
        <p className="conversation-empty" data-testid="search-empty">
          No conversations match “{search.query.trim()}”.
        </p>
      )}
      {search.nextCursor && (
        <button type="button" className="ghost-button load-more" onClick={() => void search.loadMore()}>
          More results
        </button>
      )}
    </nav>
  );
}

/** Text with its matched words in <mark>; React escapes every piece, so a snippet can never be markup. */
function Highlighted({ text, ranges }: { text: string; ranges: Array<{ start: number; end: number }> }) {
  const pieces: Array<{ text: string; marked: boolean }> = [];
  let position = 0;
  for (const { start, end } of [...ranges].sort((a, b) => a.start - b.start)) {
    if (start < position || end > text.length || end <= start) continue;
    if (start > position) pieces.push({ text: text.slice(position, start), marked: false });
    pieces.push({ text: text.slice(start, end), marked: true });
    position = end;
  }
  if (position < text.length) pieces.push({ text: text.slice(position), marked: false });
  return (
    <>
      {pieces.map((piece, index) => (piece.marked ? <mark key={index}>{piece.text}</mark> : <span key={index}>{piece.text}</span>))}
    </>
  );
}
