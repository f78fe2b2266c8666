import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { submitOnEnter, submitWithoutReload } from "./submit-handlers.ts";

/**
 * Edits a user message in place: Save sends the text as a new version of the message (its reply
 * is generated anew; the old version stays, one of its versions), Escape or Cancel closes.
 */
export function MessageEditor({ initial, onSave, onCancel }: { initial: string; onSave: (content: string) => Promise<boolean>; onCancel: () => void }) {
  const [draft, setDraft] = useState(initial);
  const [saving, setSaving] = useState(false);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const input = inputRef.current;
    input?.focus();
    input?.setSelectionRange(input.value.length, input.value.length);
  }, []);
  const canSave = draft.trim().length > 0 && draft.trim() !== initial.trim() && !saving;

  async function save() {
    if (!canSave) return;
    setSaving(true);
    try {
      if (await onSave(draft.trim())) onCancel();
    } finally {
      setSaving(false);
    }
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Escape") onCancel();
    else submitOnEnter(event, save);
  }

  return (
    <form className="message-editor" onSubmit={submitWithoutReload(save)}>
      <textarea
        ref={inputRef}
        className="message-editor-input"
        data-testid="message-edit-input"
        aria-label="Edit your message"
        value={draft}
        rows={Math.min(8, Math.max(2, draft.split("\n").length))}
        onChange={(event) => setDraft(event.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="message-editor-actions">
        <button type="button" className="ghost-button" onClick={onCancel} data-testid="message-edit-cancel">
          Cancel
        </button>
        <button type="submit" className="button-primary" disabled={!canSave} data-testid="message-edit-save">
          Save &amp; send
        </button>
      </div>
    </form>
  );
}
