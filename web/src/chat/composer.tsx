import { useEffect, useId, useRef, useState } from "react";
import { LineIcon } from "../ui/line-icon.tsx";
import { submitOnEnter, submitWithoutReload } from "./submit-handlers.ts";

export interface ComposerProps {
  generating: boolean;
  disabled?: boolean;
  /** Resolves true when the message was accepted, so the draft can be cleared. */
  onSend: (content: string) => Promise<boolean>;
  onStop: () => void;
  autoFocus?: boolean;
}

/** Enter sends, Shift+Enter adds a line; while a reply streams, Send becomes Stop. */
export function Composer({ generating, disabled = false, onSend, onStop, autoFocus = false }: ComposerProps) {
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const textareaRef = useRef<HTMLTextAreaElement>(null);
  const inputId = useId();
  const hintId = useId();

  useEffect(() => {
    const textarea = textareaRef.current;
    if (!textarea) return;
    // Grow with the draft up to the CSS max-height, then scroll.
    textarea.style.height = "auto";
    textarea.style.height = `${textarea.scrollHeight}px`;
  }, [draft]);

  useEffect(() => {
    if (autoFocus) textareaRef.current?.focus();
  }, [autoFocus]);

  const canSend = draft.trim().length > 0 && !generating && !sending && !disabled;

  async function send() {
    if (!canSend) return;
    setSending(true);
    try {
      if (await onSend(draft.trim())) setDraft("");
    } finally {
      setSending(false);
      textareaRef.current?.focus();
    }
  }

  return (
    <form className="composer" onSubmit={submitWithoutReload(send)}>
      <label htmlFor={inputId} className="visually-hidden">
        Message
      </label>
      <textarea
        id={inputId}
        ref={textareaRef}
        data-testid="composer-input"
        className="composer-input"
        rows={1}
        placeholder="Message Sluice…"
        aria-describedby={hintId}
        value={draft}
        disabled={disabled}
        onChange={(event) => setDraft(event.target.value)}
        onKeyDown={(event) => submitOnEnter(event, send)}
      />
      <span id={hintId} className="visually-hidden">
        Enter to send, Shift+Enter for a new line.
      </span>
      {generating ? (
        <button key="stop" type="button" className="composer-button composer-stop" data-testid="composer-stop" onClick={onStop} aria-label="Stop generating">
          <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
            <rect x="6" y="6" width="12" height="12" rx="2" fill="currentColor" />
          </svg>
          <span>Stop</span>
        </button>
      ) : (
        <button key="send" type="submit" className="composer-button composer-send" data-testid="composer-send" disabled={!canSend} aria-label="Send message">
          <LineIcon name="arrowUp" size={18} strokeWidth={2.2} />
        </button>
      )}
    </form>
  );
}
