import { useCallback, useEffect, useRef, useState } from "react";
import { isApiError, NETWORK_ERROR } from "../api/api-error.ts";
import type { ApiClient } from "../api/create-api-client.ts";
import type { Conversation, ErrorInfo, Message } from "../api/types.ts";
import { broadcastToTabs, listenToTabs } from "../navigation/tab-channel.ts";
import { applyStreamEvent, createLiveReply, type LiveReply } from "./live-reply.ts";
import { openGenerationStream, type ConnectionState, type GenerationStream } from "./open-generation-stream.ts";

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
  regenerate: () => Promise<void>;
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
            setConversation(fresh);
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
    (messageId: string, taskId: string, streamUrl: string) => {
      closeStream();
      updateLive(createLiveReply(messageId, taskId));
      streamRef.current = openGenerationStream({
        streamUrl,
        lastEventId: null,
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
      setConversation(fresh);
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
    };
  }, [conversationId, load]);

  const send = useCallback(
    async (content: string, model?: string) => {
      setActionError(null);
      try {
        const response = await api.sendMessage(conversationId, content, model);
        const assistant: Message = {
          id: response.assistantMessage.id,
          role: "assistant",
          content: "",
          status: response.assistantMessage.status,
          createdAt: response.assistantMessage.createdAt ?? new Date().toISOString(),
          model: response.assistantMessage.model ?? model ?? null,
          taskId: response.taskId,
          error: null,
        };
        setConversation((previous) =>
          previous === null ? previous : { ...previous, messages: [...previous.messages, response.userMessage, assistant] },
        );
        startStreaming(assistant.id, response.taskId, response.streamUrl);
        broadcastToTabs({ type: "conversation-changed", conversationId });
        onChangedRef.current();
        return true;
      } catch (error) {
        setActionError(toErrorInfo(error));
        if (isApiError(error) && error.code === "GENERATION_IN_PROGRESS") void load();
        return false;
      }
    },
    [api, conversationId, load, startStreaming],
  );

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
      const response = await api.regenerate(conversationId);
      const assistant: Message = {
        id: response.assistantMessage.id,
        role: "assistant",
        content: "",
        status: response.assistantMessage.status,
        createdAt: response.assistantMessage.createdAt ?? new Date().toISOString(),
        model: response.assistantMessage.model ?? null,
        taskId: response.taskId,
        error: null,
      };
      setConversation((previous) => {
        if (previous === null) return previous;
        const messages = [...previous.messages];
        const last = messages.at(-1);
        if (last?.role === "assistant") messages.pop();
        return { ...previous, messages: [...messages, assistant] };
      });
      startStreaming(assistant.id, response.taskId, response.streamUrl);
      broadcastToTabs({ type: "conversation-changed", conversationId });
    } catch (error) {
      setActionError(toErrorInfo(error));
    }
  }, [api, conversationId, startStreaming]);

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
    rename,
    dismissError: () => setActionError(null),
  };
}

function isTerminal(message: Message): boolean {
  return message.status === "completed" || message.status === "cancelled" || message.status === "failed";
}
