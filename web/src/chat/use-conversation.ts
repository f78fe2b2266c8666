import { useCallback, useEffect, useRef, useState } from "react";
import { isApiError, NETWORK_ERROR } from "../api/api-error.ts";
import type { ApiClient } from "../api/create-api-client.ts";
import type { StartedTurn, TurnEvents } from "../api/turn-stream.ts";
import type { Conversation, ErrorInfo, Message, RegenerateResponse, SendMessageResponse } from "../api/types.ts";
import { broadcastToTabs, listenToTabs } from "../navigation/tab-channel.ts";
import { withNewestPage, withNewVersion, withOlderPage } from "./conversation-pages.ts";
import { applyStreamEvent, createLiveReply, type LiveReply } from "./live-reply.ts";
import { openGenerationStream, type ConnectionState, type GenerationStream } from "./open-generation-stream.ts";
import { takeHandedOverTurn } from "./handed-over-turns.ts";

export interface ConversationController {
  conversation: Conversation | null;
  loadError: ErrorInfo | null;
  /** The reply being streamed, until the saved message replaces it. */
  live: LiveReply | null;
  /** Null when no stream is open. */
  connection: ConnectionState | null;
  actionError: ErrorInfo | null;
  /** A reply is being generated: the composer shows Stop instead of Send. */
  generating: boolean;
  send: (content: string, model?: string) => Promise<boolean>;
  stop: () => Promise<void>;
  /** A new version of the last reply; the old one stays, one of its versions. */
  regenerate: () => Promise<void>;
  /** A new version of a user message, answered anew; resolves false when refused (the error is shown). */
  edit: (messageId: string, content: string, model?: string) => Promise<boolean>;
  /** Shows another version of a message (one of its `siblings.ids`) and the branch under it. */
  switchVersion: (messageId: string) => Promise<void>;
  /** Loads the page of older messages before the oldest shown, if any (on scroll to the top). */
  loadOlder: () => Promise<void>;
  loadingOlder: boolean;
  /** Saves a new title; rejects with the ApiError so the title editor can show it. */
  rename: (title: string) => Promise<void>;
  dismissError: () => void;
}

const settleAttempts = 8;
const settleDelayMs = 250;

function toErrorInfo(error: unknown): ErrorInfo {
  if (isApiError(error)) return error.toInfo();
  return { code: "INTERNAL", message: error instanceof Error ? error.message : String(error) };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Loads one conversation and streams its active generation, if any.
 * Owns the tab's single SSE connection: it is opened only for the active
 * generation of this conversation and closed when the conversation is left.
 */
export function useConversation(api: ApiClient, conversationId: string, onChanged: () => void): ConversationController {
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [loadError, setLoadError] = useState<ErrorInfo | null>(null);
  const [live, setLive] = useState<LiveReply | null>(null);
  const [connection, setConnection] = useState<ConnectionState | null>(null);
  const [actionError, setActionError] = useState<ErrorInfo | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const loadingOlderRef = useRef(false);
  const liveRef = useRef<LiveReply | null>(null);
  const streamRef = useRef<GenerationStream | null>(null);
  const mountedRef = useRef(true);
  const onChangedRef = useRef(onChanged);
  onChangedRef.current = onChanged;

  const updateLive = useCallback((reply: LiveReply | null) => {
    liveRef.current = reply;
    setLive(reply);
  }, []);

  const closeStream = useCallback(() => {
    streamRef.current?.close();
    streamRef.current = null;
    setConnection(null);
  }, []);

  /** After `end`: swap the live reply for the saved message once the server has stored it. */
  const settle = useCallback(
    async (messageId: string) => {
      for (let attempt = 0; attempt < settleAttempts && mountedRef.current; attempt += 1) {
        try {
          const fresh = await api.getConversation(conversationId);
          if (!mountedRef.current) return;
          const saved = fresh.messages.find((message) => message.id === messageId);
          const stillActive = fresh.activeGeneration?.messageId === messageId;
          if (!stillActive && (saved === undefined || isTerminal(saved))) {
            setConversation((previous) => withNewestPage(previous, fresh));
            if (liveRef.current?.messageId === messageId) updateLive(null);
            onChangedRef.current();
            return;
          }
        } catch {
          // Offline for a moment: keep the streamed text and try again.
        }
        await delay(settleDelayMs * (attempt + 1));
      }
    },
    [api, conversationId, updateLive],
  );

  const startStreaming = useCallback(
    (messageId: string, taskId: string, streamUrl: string, initialEvents: TurnEvents | null = null) => {
      closeStream();
      updateLive(createLiveReply(messageId, taskId));
      streamRef.current = openGenerationStream({
        streamUrl,
        lastEventId: null,
        initialEvents,
        currentCursor: () => liveRef.current?.lastEventId ?? null,
        onRestartFromBeginning: () => {
          if (liveRef.current?.messageId === messageId) updateLive(createLiveReply(messageId, taskId));
        },
        onEvent: (event) => {
          const current = liveRef.current;
          if (current === null || current.messageId !== messageId) return;
          const next = applyStreamEvent(current, event);
          if (next !== current) updateLive(next);
        },
        onConnectionChange: (state) => {
          if (mountedRef.current) setConnection(state);
        },
        refreshStreamUrl: async () => {
          const fresh = await api.getConversation(conversationId);
          if (fresh.activeGeneration?.taskId === taskId) return fresh.activeGeneration.streamUrl;
          return null;
        },
        onFinished: () => {
          streamRef.current = null;
          if (!mountedRef.current) return;
          setConnection(null);
          void settle(messageId);
        },
      });
    },
    [api, conversationId, closeStream, settle, updateLive],
  );

  /** Loads (or reloads) the conversation and attaches to its active generation. */
  const load = useCallback(async () => {
    try {
      const fresh = await api.getConversation(conversationId);
      if (!mountedRef.current) return;
      setConversation((previous) => withNewestPage(previous?.id === fresh.id ? previous : null, fresh));
      setLoadError(null);
      const active = fresh.activeGeneration;
      if (active && liveRef.current?.taskId !== active.taskId) {
        startStreaming(active.messageId, active.taskId, active.streamUrl);
      }
    } catch (error) {
      if (!mountedRef.current) return;
      // A network blip on a refresh keeps what is shown; only a first load shows the error.
      if (isApiError(error) && error.code === NETWORK_ERROR) setLoadError((previous) => previous ?? error.toInfo());
      else setLoadError(toErrorInfo(error));
    }
  }, [api, conversationId, startStreaming]);

  useEffect(() => {
    mountedRef.current = true;
    // The new-chat page started this conversation's first reply and passes on the POST's stream.
    const handedOver = takeHandedOverTurn(conversationId);
    if (handedOver) startStreaming(handedOver.accepted.assistantMessage.id, handedOver.accepted.taskId, handedOver.accepted.streamUrl, handedOver.events);
    void load();
    const unsubscribe = listenToTabs((message) => {
      if (message.type === "conversation-changed" && message.conversationId === conversationId) void load();
    });
    const onFocus = () => {
      if (streamRef.current === null) void load();
    };
    window.addEventListener("focus", onFocus);
    return () => {
      mountedRef.current = false;
      unsubscribe();
      window.removeEventListener("focus", onFocus);
      streamRef.current?.close();
      streamRef.current = null;
      // A remount (StrictMode's, or the same conversation again) must attach anew: with the old reply
      // still in liveRef, load() would take it for the one already streaming and open nothing.
      liveRef.current = null;
      setConnection(null);
    };
  }, [conversationId, load, startStreaming]);

  /** A turn the server accepted (send, edit, regenerate): show it in place and stream its reply. */
  const showAccepted = useCallback(
    (started: StartedTurn<SendMessageResponse | RegenerateResponse>, replacedId: string | undefined, model: string | undefined) => {
      const { accepted: response, events } = started;
      if (!mountedRef.current) {
        events?.cancel();
        return;
      }
      const assistant: Message = {
        id: response.assistantMessage.id,
        // A regenerate's parent is the replaced reply's (withNewVersion sets it).
        parentId: "userMessage" in response ? response.userMessage.id : null,
        siblings: { index: 0, count: 1, ids: [response.assistantMessage.id] },
        role: "assistant",
        content: "",
        status: response.assistantMessage.status,
        createdAt: response.assistantMessage.createdAt ?? new Date().toISOString(),
        model: response.assistantMessage.model ?? model ?? null,
        taskId: response.taskId,
        error: null,
      };
      const added = "userMessage" in response ? [{ ...response.userMessage, siblings: { index: 0, count: 1, ids: [response.userMessage.id] } }, assistant] : [assistant];
      setConversation((previous) => (previous === null ? previous : { ...previous, messages: withNewVersion(previous.messages, replacedId, added) }));
      startStreaming(assistant.id, response.taskId, response.streamUrl, events);
      broadcastToTabs({ type: "conversation-changed", conversationId });
      onChangedRef.current();
    },
    [conversationId, startStreaming],
  );

  /**
   * Sends a user turn (a new message, or a new version of `replacedId`); resolves false when
   * refused. Refused because a reply is already generating (started in another tab): reload to show it.
   */
  const submitTurn = useCallback(
    async (request: () => Promise<StartedTurn<SendMessageResponse>>, replacedId: string | undefined, model: string | undefined) => {
      setActionError(null);
      try {
        showAccepted(await request(), replacedId, model);
        return true;
      } catch (error) {
        setActionError(toErrorInfo(error));
        if (isApiError(error) && error.code === "GENERATION_IN_PROGRESS") void load();
        return false;
      }
    },
    [load, showAccepted],
  );

  const send = useCallback(
    (content: string, model?: string) => submitTurn(() => api.sendMessage(conversationId, content, model), undefined, model),
    [api, conversationId, submitTurn],
  );

  const edit = useCallback(
    (messageId: string, content: string, model?: string) => submitTurn(() => api.editMessage(conversationId, messageId, content, model), messageId, model),
    [api, conversationId, submitTurn],
  );

  const switchVersion = useCallback(
    async (messageId: string) => {
      setActionError(null);
      try {
        const fresh = await api.chooseBranch(conversationId, messageId);
        if (!mountedRef.current) return;
        setConversation((previous) => withNewestPage(previous, fresh));
        broadcastToTabs({ type: "conversation-changed", conversationId });
      } catch (error) {
        setActionError(toErrorInfo(error));
      }
    },
    [api, conversationId],
  );

  const loadOlder = useCallback(async () => {
    const cursor = conversation?.hasMore ? conversation.nextCursor : null;
    if (!cursor || loadingOlderRef.current) return;
    loadingOlderRef.current = true;
    setLoadingOlder(true);
    try {
      const older = await api.getConversation(conversationId, cursor);
      if (mountedRef.current) setConversation((previous) => (previous === null ? previous : withOlderPage(previous, older)));
    } catch (error) {
      if (mountedRef.current) setActionError(toErrorInfo(error));
    } finally {
      loadingOlderRef.current = false;
      if (mountedRef.current) setLoadingOlder(false);
    }
  }, [api, conversation, conversationId]);

  const stop = useCallback(async () => {
    const current = liveRef.current;
    const taskId = current?.taskId ?? conversation?.activeGeneration?.taskId;
    if (!taskId) return;
    try {
      await api.cancel(taskId);
      // The stream delivers `end` {status:"cancelled"}; without a stream, read the saved state.
      if (streamRef.current === null) void load();
    } catch (error) {
      setActionError(toErrorInfo(error));
    }
  }, [api, conversation, load]);

  const regenerate = useCallback(async () => {
    setActionError(null);
    try {
      const started = await api.regenerate(conversationId);
      const last = conversation?.messages.at(-1);
      showAccepted(started, last?.role === "assistant" ? last.id : undefined, undefined);
    } catch (error) {
      setActionError(toErrorInfo(error));
    }
  }, [api, conversation, conversationId, showAccepted]);

  const rename = useCallback(
    async (title: string) => {
      const renamed = await api.renameConversation(conversationId, title);
      setConversation((previous) => (previous === null ? previous : { ...previous, title: renamed.title, updatedAt: renamed.updatedAt }));
      onChangedRef.current();
      broadcastToTabs({ type: "conversation-changed", conversationId });
    },
    [api, conversationId],
  );

  const generating = live !== null ? !live.ended : conversation?.activeGeneration != null;

  return {
    conversation,
    loadError,
    live,
    connection,
    actionError,
    generating,
    send,
    stop,
    regenerate,
    edit,
    switchVersion,
    loadOlder,
    loadingOlder,
    rename,
    dismissError: () => setActionError(null),
  };
}

function isTerminal(message: Message): boolean {
  return message.status === "completed" || message.status === "cancelled" || message.status === "failed";
}
