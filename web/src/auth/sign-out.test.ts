import { describe, expect, it } from "vitest";
import { createApiClient } from "../api/create-api-client.ts";
import { createSignOut } from "./sign-out.ts";

interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
}

function recordingClient(answer: () => Promise<Response>): { api: ReturnType<typeof createApiClient>; seen: SeenRequest[]; unauthenticated: string[] } {
  const seen: SeenRequest[] = [];
  const unauthenticated: string[] = [];
  const api = createApiClient({
    getToken: () => "sls_the-token",
    onUnauthenticated: () => unauthenticated.push("called"),
    fetch: (input, init) => {
      const headers = new Headers(init?.headers);
      seen.push({ method: init?.method ?? "GET", path: typeof input === "string" ? input : input instanceof URL ? input.href : input.url, authorization: headers.get("authorization") ?? undefined });
      return answer();
    },
  });
  return { api, seen, unauthenticated };
}

describe("Sign out in the web UI", () => {
  it("revokes the token on the server before forgetting it locally", async () => {
    const { api, seen } = recordingClient(() => Promise.resolve(new Response(null, { status: 204 })));
    const order: string[] = [];
    const signOut = createSignOut({
      logout: async () => {
        await api.logout();
        order.push(`server:${seen.length}`);
      },
      forgetLocally: () => order.push("local"),
    });
    await signOut();
    expect(seen).toEqual([{ method: "POST", path: "/api/auth/logout", authorization: "Bearer sls_the-token" }]);
    expect(order).toEqual(["server:1", "local"]);
  });

  it("still signs this tab out when the server cannot be reached", async () => {
    const { api, unauthenticated } = recordingClient(() => Promise.reject(new TypeError("offline")));
    const order: string[] = [];
    await createSignOut({ logout: () => api.logout(), forgetLocally: () => order.push("local") })();
    expect(order).toEqual(["local"]);
    // The logout call itself never triggers the 401 path.
    expect(unauthenticated).toEqual([]);
  });
});
