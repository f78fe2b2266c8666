import { ApiError, NETWORK_ERROR } from "./api-error.ts";
import { isEventStream, readStartedTurn, turnAccept, type StartedTurn } from "./turn-stream.ts";
import type {
  AuthResponse,
  Conversation,
  ConversationPage,
  ConversationSummary,
  MeResponse,
  RegenerateResponse,
  SearchPage,
  SendMessageResponse,
} from "./types.ts";

export interface ApiClientOptions {
  /** Read on every request, so a token changed in another tab is picked up. */
  getToken: () => string | null;
  /** Called when the API answers 401 UNAUTHENTICATED to an authenticated request. */
  onUnauthenticated: () => void;
  fetch?: typeof fetch;
}

export type ApiClient = ReturnType<typeof createApiClient>;

/**
 * A typed wrapper over the JSON API. Every failure becomes an ApiError with the
 * server's `{error:{code,message}}`, or NETWORK_ERROR when no answer arrived.
 */
export function createApiClient(options: ApiClientOptions) {
  const fetchImplementation = options.fetch ?? globalThis.fetch.bind(globalThis);

  // `sendToken` without `authenticated`: the token goes along, but a 401 does not sign the tab out (logout).
  async function send(method: string, path: string, body: unknown, sendToken: boolean, accept = "application/json"): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (body !== undefined) headers["content-type"] = "application/json";
    const token = options.getToken();
    if (sendToken && token) headers.authorization = `Bearer ${token}`;
    try {
      return await fetchImplementation(path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new ApiError(NETWORK_ERROR, "Could not reach the server.", 0);
    }
  }

  async function readJson<T>(response: Response, authenticated: boolean): Promise<T> {
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = readErrorBody(parsed) ?? { code: `HTTP_${response.status}`, message: response.statusText || "Request failed." };
      if (authenticated && response.status === 401) options.onUnauthenticated();
      throw new ApiError(error.code, error.message, response.status);
    }
    return parsed as T;
  }

  async function request<T>(method: string, path: string, body?: unknown, authenticated = true, sendToken = authenticated): Promise<T> {
    return await readJson<T>(await send(method, path, body, sendToken), authenticated);
  }

  /**
   * A POST that starts a generation, asking for its stream in the same response (PROTOCOL.md 2.4):
   * the first tokens need no second request. Refusals and the plain 202 come as JSON, as without it.
   */
  async function startTurn<T>(path: string, body: unknown): Promise<StartedTurn<T>> {
    const response = await send("POST", path, body, true, turnAccept);
    if (response.ok && isEventStream(response)) return await readStartedTurn<T>(response);
    return { accepted: await readJson<T>(response, true), events: null };
  }

  return {
    register: (email: string, password: string) =>
      request<AuthResponse>("POST", "/api/auth/register", { email, password }, false),
    login: (email: string, password: string) => request<AuthResponse>("POST", "/api/auth/login", { email, password }, false),
    /** Revokes the current bearer token on the server (204 whether or not it was still valid). */
    logout: () => request<undefined>("POST", "/api/auth/logout", undefined, false, true),
    me: () => request<MeResponse>("GET", "/api/me"),
    listConversations: (cursor?: string | null, limit = 50) => {
      const query = new URLSearchParams({ limit: String(limit) });
      if (cursor) query.set("cursor", cursor);
      return request<ConversationPage>("GET", `/api/conversations?${query.toString()}`);
    },
    createConversation: (title?: string) =>
      request<ConversationSummary>("POST", "/api/conversations", title === undefined ? {} : { title }),
    searchConversations: (query: string, cursor?: string | null, limit = 20) => {
      const parameters = new URLSearchParams({ q: query, limit: String(limit) });
      if (cursor) parameters.set("cursor", cursor);
      return request<SearchPage>("GET", `/api/conversations/search?${parameters.toString()}`);
    },
    renameConversation: (id: string, title: string) =>
      request<ConversationSummary>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { title }),
    /** A page of the active path: the newest messages, or those before `cursor` (a previous page's nextCursor). */
    getConversation: (id: string, cursor?: string | null) =>
      request<Conversation>("GET", `/api/conversations/${encodeURIComponent(id)}${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`),
    /** Shows the branch through `messageId` (one of a message's versions); answers the conversation's newest page. */
    chooseBranch: (conversationId: string, messageId: string) =>
      request<Conversation>("POST", `/api/conversations/${encodeURIComponent(conversationId)}/branch`, { messageId }),
    /** A new version of a user message, answered by a new reply; the old version stays one branch over. */
    editMessage: (conversationId: string, messageId: string, content: string, model?: string) =>
      startTurn<SendMessageResponse>(
        `/api/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}/edit`,
        model === undefined ? { content } : { content, model },
      ),
    deleteConversation: (id: string) => request<undefined>("DELETE", `/api/conversations/${encodeURIComponent(id)}`),
    sendMessage: (conversationId: string, content: string, model?: string) =>
      startTurn<SendMessageResponse>(
        `/api/conversations/${encodeURIComponent(conversationId)}/messages`,
        model === undefined ? { content } : { content, model },
      ),
    /** A new version of the last reply; the old one stays one branch over. */
    regenerate: (conversationId: string) =>
      startTurn<RegenerateResponse>(`/api/conversations/${encodeURIComponent(conversationId)}/regenerate`, {}),
    cancel: (taskId: string) => request<unknown>("POST", `/api/stream/${encodeURIComponent(taskId)}/cancel`, {}),
  };
}

function readErrorBody(value: unknown): { code: string; message: string } | undefined {
  if (typeof value !== "object" || value === null || !("error" in value)) return undefined;
  const error = value.error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code !== "string") return undefined;
  return { code, message: typeof message === "string" ? message : code };
}
