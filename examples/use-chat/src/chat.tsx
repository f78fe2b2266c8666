import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { useMemo, useRef, useState, type FormEvent } from "react";
import { cancelReply, loadHistory, type SluiceMessage } from "./sluice.ts";

export function Chat({ chatId, token, history }: { chatId: string; token: string; history: SluiceMessage[] }) {
  const onNoActiveReply = useRef(() => {});
  const transport = useMemo(
    // POST /api/chat to send, GET /api/chat/:id/stream to resume: DefaultChatTransport's own URLs.
    () =>
      new DefaultChatTransport<SluiceMessage>({
        api: "/api/chat",
        headers: { authorization: `Bearer ${token}` },
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          if (init?.method === "GET" && response.status === 204) onNoActiveReply.current();
          return response;
        },
      }),
    [token],
  );
  // resume: true reconnects on mount; Sluice answers the reply still generating (from its start), or 204.
  const { messages, setMessages, sendMessage, status, error, stop } = useChat<SluiceMessage>({ id: chatId, messages: history, transport, resume: true });
  // A reply that ended between loading the history and the resume (so the resume found nothing
  // active) is saved by then: show it from the history.
  onNoActiveReply.current = () => {
    if (messages.at(-1)?.role !== "user") return;
    void loadHistory(chatId, token).then((saved) => {
      if (saved.at(-1)?.role === "assistant") setMessages(saved);
    });
  };
  const [input, setInput] = useState("");

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (input.trim() === "") return;
    void sendMessage({ text: input });
    setInput("");
  };
  const onStop = () => {
    const taskId = messages.findLast((message) => message.role === "assistant")?.metadata?.taskId;
    void stop();
    if (taskId) void cancelReply(taskId, token);
  };

  return (
    <main data-status={status}>
      {messages.map((message) => (
        <article key={message.id} data-role={message.role} data-message-id={message.id}>
          <strong>{message.role === "user" ? "You" : "Sluice"}</strong>
          {message.parts.map((part, index) =>
            part.type === "text" ? (
              <p key={index} data-part="text" style={{ whiteSpace: "pre-wrap" }}>
                {part.text}
              </p>
            ) : part.type === "reasoning" ? (
              <details key={index}>
                <summary>Reasoning</summary>
                <p style={{ whiteSpace: "pre-wrap" }}>{part.text}</p>
              </details>
            ) : null,
          )}
        </article>
      ))}
      {error && <p role="alert">{error.message}</p>}
      <form onSubmit={onSubmit}>
        <input aria-label="Message" value={input} onChange={(event) => setInput(event.target.value)} disabled={status !== "ready" && status !== "error"} />
        <button type="submit" disabled={status !== "ready" && status !== "error"}>
          Send
        </button>
        {(status === "submitted" || status === "streaming") && (
          <button type="button" onClick={onStop}>
            Stop
          </button>
        )}
      </form>
    </main>
  );
}
