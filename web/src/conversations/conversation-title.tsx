import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { isApiError } from "../api/api-error.ts";
import type { ErrorInfo } from "../api/types.ts";
import { ErrorNotice } from "../ui/error-notice.tsx";
import { LineIcon } from "../ui/line-icon.tsx";

export interface ConversationTitleProps {
  title: string;
  /** Absent while the conversation is loading: the title cannot be edited yet. */
  onRename?: ((title: string) => Promise<void>) | undefined;
}

/**
 * The header title, renamed in place: the pencil button (or a double click) turns it into a
 * field; Enter saves, Escape cancels, and a refused title keeps the field open with the error.
 */
export function ConversationTitle({ title, onRename }: ConversationTitleProps) {
  const [draft, setDraft] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const renameButtonRef = useRef<HTMLButtonElement>(null);
  const editing = draft !== null;

  useEffect(() => {
    if (editing) inputRef.current?.select();
  }, [editing]);

  const stopEditing = () => {
    setDraft(null);
    setError(null);
    // Keyboard users land back where they started.
    requestAnimationFrame(() => renameButtonRef.current?.focus());
  };

  const save = async (event?: FormEvent) => {
    event?.preventDefault();
    if (draft === null || !onRename || saving) return;
    if (draft.trim() === title) return stopEditing();
    setSaving(true);
    setError(null);
    try {
      await onRename(draft);
      stopEditing();
    } catch (failure) {
      setError(isApiError(failure) ? failure.toInfo() : { code: "INTERNAL", message: String(failure) });
    } finally {
      setSaving(false);
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "Escape") {
      event.preventDefault();
      stopEditing();
    }
  };

  if (!editing) {
    return (
      <div className="chat-title-row">
        <h1 className="chat-title" title={title} data-testid="conversation-title" onDoubleClick={() => onRename && setDraft(title)}>
          {title}
        </h1>
        {onRename && (
          <button
            ref={renameButtonRef}
            type="button"
            className="icon-button rename-button"
            data-testid="conversation-rename"
            aria-label="Rename conversation"
            onClick={() => setDraft(title)}
          >
            <LineIcon name="pencil" size={15} strokeWidth={1.8} />
          </button>
        )}
      </div>
    );
  }
  return (
    <div className="chat-title-row editing">
      <form className="rename-form" onSubmit={(event) => void save(event)}>
        <label className="visually-hidden" htmlFor="conversation-title-input">
          Conversation title
        </label>
        <input
          id="conversation-title-input"
          ref={inputRef}
          className="rename-input"
          data-testid="conversation-title-input"
          value={draft}
          maxLength={200}
          disabled={saving}
          aria-invalid={error !== null}
          aria-describedby={error ? "conversation-title-error" : undefined}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" className="ghost-button" data-testid="conversation-title-save" disabled={saving}>
          Save
        </button>
        <button type="button" className="ghost-button" data-testid="conversation-title-cancel" onClick={stopEditing}>
          Cancel
        </button>
      </form>
      {error && (
        <div className="rename-error" id="conversation-title-error" data-testid="conversation-title-error">
          <ErrorNotice error={error} onDismiss={() => setError(null)} />
        </div>
      )}
    </div>
  );
}
