import { describeError } from "../api/describe-error.ts";
import type { ErrorInfo } from "../api/types.ts";

/** An error in plain words, with the server's detail and the stable code for support. */
export function ErrorNotice({ error, onDismiss }: { error: ErrorInfo; onDismiss?: () => void }) {
  const described = describeError(error);
  return (
    <div className="error-notice" role="alert">
      <div className="error-notice-text">
        <p className="error-summary">{described.summary}</p>
        {described.detail && <p className="error-detail">{described.detail}</p>}
        <p className="error-code">
          Error code <code>{described.code}</code>
        </p>
      </div>
      {onDismiss && (
        <button type="button" className="icon-button" onClick={onDismiss} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}
