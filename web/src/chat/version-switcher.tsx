import type { Siblings } from "../api/types.ts";

/**
 * "‹ 2 / 3 ›" under a message with versions (its edits or regenerates). Picking one shows the
 * branch under it; disabled while a reply is generating (the API refuses the switch then).
 */
export function VersionSwitcher({ siblings, disabled, onSwitch }: { siblings: Siblings; disabled: boolean; onSwitch: (messageId: string) => void }) {
  const { index, count, ids } = siblings;
  const previous = ids[index - 1];
  const next = ids[index + 1];
  return (
    <span className="version-switcher" data-testid="message-versions" role="group" aria-label={`Version ${index + 1} of ${count}`}>
      <button
        type="button"
        className="ghost-button version-button"
        aria-label="Previous version"
        data-testid="version-previous"
        disabled={disabled || previous === undefined}
        onClick={() => previous && onSwitch(previous)}
      >
        ‹
      </button>
      <span className="version-label" data-testid="version-label">
        {index + 1} / {count}
      </span>
      <button
        type="button"
        className="ghost-button version-button"
        aria-label="Next version"
        data-testid="version-next"
        disabled={disabled || next === undefined}
        onClick={() => next && onSwitch(next)}
      >
        ›
      </button>
    </span>
  );
}
