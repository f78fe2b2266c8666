import type { FormEvent, KeyboardEvent } from "react";

/**
 * The message fields' keys: Enter submits, Shift+Enter adds a line. An Enter that confirms an IME
 * candidate (`isComposing`) only ends the composition, so it must not submit.
 */
export function submitOnEnter(event: KeyboardEvent<HTMLTextAreaElement>, submit: () => Promise<void>): void {
  if (event.key !== "Enter" || event.shiftKey || event.nativeEvent.isComposing) return;
  event.preventDefault();
  void submit();
}

/** A form's submit handler that runs `submit` in place of the browser's page load. */
export function submitWithoutReload(submit: () => Promise<void>): (event: FormEvent) => void {
  return (event) => {
    event.preventDefault();
    void submit();
  };
}
