import { useEffect, useState } from "react";
import type { ConnectionState } from "./open-generation-stream.ts";

function useBrowserOnline(): boolean {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    window.addEventListener("online", update);
    window.addEventListener("offline", update);
    return () => {
      window.removeEventListener("online", update);
      window.removeEventListener("offline", update);
    };
  }, []);
  return online;
}

/** Shown only while the live reply is away: the stream resumes at its cursor on its own. */
export function ConnectionStatus({ connection }: { connection: ConnectionState | null }) {
  const online = useBrowserOnline();
  const away = connection === "reconnecting" || (!online && connection !== null);
  if (!away && online) return null;
  return (
    <div className="connection-status" data-testid="connection-status" data-state={away ? "reconnecting" : "offline"} role="status">
      <span className="connection-dot" aria-hidden="true" />
      {online ? "Reconnecting…" : "Offline — will resume when you're back"}
    </div>
  );
}
