import { useMemo } from "react";
import { createSignOut } from "./auth/sign-out.ts";
import { createApiClient } from "./api/create-api-client.ts";
import { AuthScreen } from "./auth/auth-screen.tsx";
import { useSession } from "./auth/use-session.ts";
import { ChatShell } from "./chat-shell.tsx";

export function App() {
  const { session, signIn, signOut, readToken } = useSession();
  // A 401 UNAUTHENTICATED on any authenticated call means the token is gone: back to sign-in.
  const api = useMemo(() => createApiClient({ getToken: readToken, onUnauthenticated: signOut }), [readToken, signOut]);
  // The Sign out button revokes the token on the server; a 401 above only forgets it here (it is already dead).
  const signOutOnServer = useMemo(() => createSignOut({ logout: () => api.logout(), forgetLocally: signOut }), [api, signOut]);
  if (!session) return <AuthScreen api={api} onSignedIn={signIn} />;
  return <ChatShell key={session.user.id} api={api} session={session} onSignOut={() => void signOutOnServer()} />;
}
