import { useCallback, useEffect, useState } from "react";

/** The current location path, kept in step with the History API (back/forward included). */
export function usePath(): [string, (path: string, options?: { replace?: boolean }) => void] {
  const [path, setPath] = useState(() => window.location.pathname);

  useEffect(() => {
    const onPopState = () => setPath(window.location.pathname);
    window.addEventListener("popstate", onPopState);
    return () => window.removeEventListener("popstate", onPopState);
  }, []);

  const navigate = useCallback((nextPath: string, options?: { replace?: boolean }) => {
    if (nextPath === window.location.pathname) return;
    if (options?.replace) window.history.replaceState(null, "", nextPath);
    else window.history.pushState(null, "", nextPath);
    setPath(nextPath);
  }, []);

  return [path, navigate];
}

/** `/c/<id>` → id; anything else → null (the new-chat page). */
export function conversationIdFromPath(path: string): string | null {
  const match = /^\/c\/([^/]+)\/?$/.exec(path);
  return match?.[1] ? decodeURIComponent(match[1]) : null;
}

export function conversationPath(id: string): string {
  return `/c/${encodeURIComponent(id)}`;
}
