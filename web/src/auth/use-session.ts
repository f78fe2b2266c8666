import { useCallback, useEffect, useState } from "react";
import type { User } from "../api/types.ts";

/** Kept in localStorage so a signed-in user stays signed in across reloads and tabs. */
const storageKey = "sluice.session";

export interface Session {
  token: string;
  user: User;
}

function readSession(): Session | null {
  try {
    const raw = window.localStorage.getItem(storageKey);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Session>;
    if (typeof parsed.token !== "string" || typeof parsed.user?.email !== "string") return null;
    return { token: parsed.token, user: parsed.user };
  } catch {
    return null;
  }
}

/** The current session, shared with other tabs through the `storage` event. */
export function useSession(): {
  session: Session | null;
  signIn: (session: Session) => void;
  signOut: () => void;
  readToken: () => string | null;
} {
  const [session, setSession] = useState<Session | null>(readSession);

  useEffect(() => {
    const onStorage = (event: StorageEvent) => {
      if (event.key === storageKey || event.key === null) setSession(readSession());
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, []);

  const signIn = useCallback((next: Session) => {
    window.localStorage.setItem(storageKey, JSON.stringify(next));
    setSession(next);
  }, []);

  const signOut = useCallback(() => {
    window.localStorage.removeItem(storageKey);
    setSession(null);
  }, []);

  const readToken = useCallback(() => readSession()?.token ?? null, []);

  return { session, signIn, signOut, readToken };
}
