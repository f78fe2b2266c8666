import { memo, useMemo, useState, type MouseEvent } from "react";
import type { ErrorInfo, MessageStatus, Siblings } from "../api/types.ts";
import { ErrorNotice } from "../ui/error-notice.tsx";
import { LineIcon } from "../ui/line-icon.tsx";
import { MessageEditor } from "./message-editor.tsx";
import { ReasoningView, type ReasoningViewProps } from "./reasoning-view.tsx";
import { renderMarkdown } from "./render-markdown.ts";
import { VersionSwitcher } from "./version-switcher.tsx";

export interface MessageViewProps {
  id: string;
  /** Opened from a search result: marked until another result is opened. */
  highlighted: boolean;
  /** Tokens in and out, once the reply is saved. */
  usage: { inputTokens: number; outputTokens: number } | null;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  error: ErrorInfo | null;
  model: string | null;
  /** The reasoning before the answer (live or saved); null when there is none. */
  reasoning?: ReasoningViewProps | null | undefined;
  /** Offered on the last assistant reply once it has finished. */
  onRegenerate?: (() => void) | undefined;
  /** This message's versions; the switcher shows when there is more than one. */
  siblings?: Siblings | undefined;
  /** Shows another version; undefined while a reply generates (switching is refused then). */
  onSwitchVersion?: ((messageId: string) => void) | undefined;
  /** Offered on user messages while no reply generates: a new version of the message. */
  onEdit?: ((content: string) => Promise<boolean>) | undefined;
}

export const MessageView = memo(function MessageView({ id, highlighted, usage, role, content, status, error, model, reasoning, onRegenerate, siblings, onSwitchVersion, onEdit }: MessageViewProps) {
  const [editing, setEditing] = useState(false);
  const highlight = highlighted ? " message-highlighted" : "";
  const versions =
    siblings && siblings.count > 1 ? <VersionSwitcher siblings={siblings} disabled={!onSwitchVersion} onSwitch={(messageId) => onSwitchVersion?.(messageId)} /> : null;
  if (role === "user") {
    return (
      <article className={`message message-user${highlight}`} data-testid="message-user" data-message-id={id} data-highlighted={highlighted || undefined} aria-label="You said">
        {editing && onEdit ? (
          <MessageEditor initial={content} onSave={onEdit} onCancel={() => setEditing(false)} />
        ) : (
          <>
            <div className="message-bubble">{content}</div>
            {(versions || onEdit) && (
              <div className="message-actions message-user-actions">
                {versions}
                {onEdit && (
                  <button type="button" className="ghost-button" onClick={() => setEditing(true)} data-testid="message-edit" aria-label="Edit this message">
                    <LineIcon name="pencil" size={14} strokeWidth={2} />
                    Edit
                  </button>
                )}
              </div>
            )}
          </>
        )}
      </article>
    );
  }
  const waiting = (status === "pending" || status === "streaming") && content.length === 0 && !reasoning;
  return (
    <article
      className={`message message-assistant status-${status}${highlight}`}
      data-testid="message-assistant"
      data-message-id={id}
      data-highlighted={highlighted || undefined}
      data-status={status}
      aria-label="Assistant replied"
      aria-busy={status === "pending" || status === "streaming"}
    >
      <div className="assistant-avatar" aria-hidden="true" />
      <div className="assistant-body">
        {reasoning && <ReasoningView {...reasoning} />}
        {waiting ? (
          <div className="typing" aria-label="Writing a reply">
            <span />
            <span />
            <span />
          </div>
        ) : (
          <MarkdownContent source={content} streaming={status === "streaming"} />
        )}
        {status === "cancelled" && <p className="message-note">Stopped — the reply was cut short.</p>}
        {status === "failed" && error && <ErrorNotice error={error} />}
        {status === "failed" && !error && <ErrorNotice error={{ code: "INTERNAL", message: "The reply failed." }} />}
        {(onRegenerate || model || usage || versions) && (
          <div className="message-actions">
            {versions}
            {model && <span className="message-model">{model}</span>}
            {usage && (
              <span
                className="message-usage"
                data-testid="message-usage"
                title={`${usage.inputTokens} tokens in (the conversation sent to the model), ${usage.outputTokens} tokens out (this reply)`}
              >
                {usage.inputTokens} in · {usage.outputTokens} out
              </span>
            )}
            {onRegenerate && (
              <button type="button" className="ghost-button" onClick={onRegenerate} data-testid="message-regenerate">
                <LineIcon name="regenerate" size={14} strokeWidth={2} />
                Regenerate
              </button>
            )}
          </div>
        )}
      </div>
    </article>
  );
});

function MarkdownContent({ source, streaming }: { source: string; streaming: boolean }) {
  // renderMarkdown runs markdown-it with html:false: all model HTML arrives escaped.
  const html = useMemo(() => renderMarkdown(source), [source]);
  return (
    <div
      className={streaming ? "markdown streaming" : "markdown"}
      onClick={copyCodeOnClick}
      dangerouslySetInnerHTML={{ __html: html }}
    />
  );
}

function copyCodeOnClick(event: MouseEvent<HTMLDivElement>) {
  const target = event.target as HTMLElement;
  const button = target.closest<HTMLButtonElement>("button[data-copy-code]");
  if (!button) return;
  const code = button.closest(".code-block")?.querySelector("code")?.textContent ?? "";
  void navigator.clipboard
    ?.writeText(code)
    .then(() => {
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    })
    .catch(() => undefined);
}
