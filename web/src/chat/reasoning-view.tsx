import { useEffect, useState } from "react";

export interface ReasoningViewProps {
  text: string;
  /** How long the model reasoned (ms); null when unknown. */
  durationMs: number | null;
  /** Still reasoning (no answer text yet): the duration ticks from `startedAtMs`. */
  thinking: boolean;
  startedAtMs: number | null;
}

/**
 * The model's reasoning, collapsed under "Thinking" (a native <details>: keyboard and screen
 * readers work without script), shown live while it streams, with its duration. Rendered as
 * plain text, never as markdown or HTML: reasoning is model output like any other.
 */
export function ReasoningView({ text, durationMs, thinking, startedAtMs }: ReasoningViewProps) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!thinking) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [thinking]);
  const shownMs = thinking && startedAtMs !== null ? Math.max(durationMs ?? 0, now - startedAtMs) : durationMs;
  return (
    <details className={thinking ? "reasoning reasoning-live" : "reasoning"} data-testid="message-reasoning" data-state={thinking ? "thinking" : "done"}>
      <summary>
        <span className="reasoning-label">{thinking ? "Thinking…" : "Thinking"}</span>
        {shownMs !== null && (
          <span className="reasoning-duration" data-testid="reasoning-duration">
            {formatDuration(shownMs)}
          </span>
        )}
      </summary>
      <div className="reasoning-text">{text}</div>
    </details>
  );
}

/** "under a second", "4 s", "2 min 5 s". */
export function formatDuration(durationMs: number): string {
  const seconds = Math.round(durationMs / 1000);
  if (seconds < 1) return "under a second";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`;
}
