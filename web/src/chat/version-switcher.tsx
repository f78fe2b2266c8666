import type { Siblings } from "../api/types.ts";

/**
 * "‹ 2 / 3 ›" under a message with versions (its edits or regenerates). Picking one shows the
 * branch under it; disabled while a reply is generating (the API refuses the switch then).
 */
export function VersionSwitcher({ siblings, disabled, onSwitch }: { siblings: Siblings; disabled: boolean; onSwitch: (messageId: string) => void }) {
  const { index, count, ids } = siblings;
  return (
    <span className="version-switcher" data-testid="message-versions" role="group" aria-label={`Version ${index + 1} of ${count}`}>
      <VersionStep label="Previous version" testId="version-previous" glyph="‹" target={ids[index - 1]} disabled={disabled} onSwitch={onSwitch} />
      <span className="version-label" data-testid="version-label">
        {index + 1} / {count}
      </span>
      <VersionStep label="Next version" testId="version-next" glyph="›" target={ids[index + 1]} disabled={disabled} onSwitch={onSwitch} />
    </span>
  );
}

interface VersionStepProps {
  label: string;
  testId: string;
  glyph: string;
  /** The version this button shows; undefined at either end, which disables it. */
  target: string | undefined;
  disabled: boolean;
  onSwitch: (messageId: string) => void;
}

function VersionStep({ label, testId, glyph, target, disabled, onSwitch }: VersionStepProps) {
  return (
    <button
      type="button"
      className="ghost-button version-button"
      aria-label={label}
      data-testid={testId}
      disabled={disabled || target === undefined}
      onClick={() => target && onSwitch(target)}
    >
      {glyph}
    </button>
  );
}
