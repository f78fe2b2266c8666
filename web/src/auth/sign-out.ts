/**
 * Sign-out ends the session on the server first (POST /api/auth/logout revokes the bearer
 * token there), then forgets it in this browser. The local part happens even when the server
 * cannot be reached, so the button always signs the user out of this tab; the token then
 * lapses by the server's idle timeout.
 */
export function createSignOut(options: { logout: () => Promise<unknown>; forgetLocally: () => void }): () => Promise<void> {
  return async () => {
    try {
      await options.logout();
    } catch {
      // Offline or server down: still sign out here (see above).
    } finally {
      options.forgetLocally();
    }
  };
}
