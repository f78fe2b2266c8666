import { useId, useState, type FormEvent } from "react";
import { isApiError } from "../api/api-error.ts";
import type { ApiClient } from "../api/create-api-client.ts";
import { describeError } from "../api/describe-error.ts";
import type { ErrorInfo } from "../api/types.ts";
import type { Session } from "./use-session.ts";
import { ErrorNotice } from "../ui/error-notice.tsx";

type Mode = "login" | "register";

export function AuthScreen({ api, onSignedIn }: { api: ApiClient; onSignedIn: (session: Session) => void }) {
  const [mode, setMode] = useState<Mode>("login");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const emailId = useId();
  const passwordId = useId();
  const hintId = useId();

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    setSubmitting(true);
    try {
      const response = mode === "login" ? await api.login(email, password) : await api.register(email, password);
      onSignedIn({ token: response.token, user: response.user });
    } catch (caught) {
      setError(isApiError(caught) ? caught.toInfo() : { code: "INTERNAL", message: String(caught) });
    } finally {
      setSubmitting(false);
    }
  }

  const registering = mode === "register";
  return (
    <main className="auth">
      <div className="auth-card">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true" />
          <span>Sluice</span>
        </div>
        <h1 className="auth-title">{registering ? "Create your account" : "Welcome back"}</h1>
        <p className="auth-subtitle">
          {registering ? "Start chatting in a few seconds." : "Sign in to pick up where you left off."}
        </p>
        <form className="auth-form" onSubmit={(event) => void submit(event)} noValidate>
          <label htmlFor={emailId}>Email</label>
          <input
            id={emailId}
            data-testid="auth-email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(event) => setEmail(event.target.value)}
          />
          <label htmlFor={passwordId}>Password</label>
          <input
            id={passwordId}
            data-testid="auth-password"
            type="password"
            autoComplete={registering ? "new-password" : "current-password"}
            required
            minLength={registering ? 8 : undefined}
            aria-describedby={registering ? hintId : undefined}
            value={password}
            onChange={(event) => setPassword(event.target.value)}
          />
          {registering && (
            <p id={hintId} className="field-hint">
              At least 8 characters.
            </p>
          )}
          {error && <AuthError error={error} />}
          <button type="submit" className="button-primary" data-testid="auth-submit" disabled={submitting}>
            {submitting ? "One moment…" : registering ? "Create account" : "Sign in"}
          </button>
        </form>
        <p className="auth-switch-line">
          {registering ? "Already have an account?" : "New to Sluice?"}{" "}
          <button
            type="button"
            className="link-button"
            data-testid="auth-switch"
            onClick={() => {
              setMode(registering ? "login" : "register");
              setError(null);
            }}
          >
            {registering ? "Sign in" : "Create an account"}
          </button>
        </p>
      </div>
    </main>
  );
}

function AuthError({ error }: { error: ErrorInfo }) {
  // Validation messages from the server name the field at fault; show them as they are.
  if (error.code === "VALIDATION_FAILED") {
    const described = describeError(error);
    return <ErrorNotice error={{ code: error.code, message: described.detail ?? described.summary }} />;
  }
  return <ErrorNotice error={error} />;
}
