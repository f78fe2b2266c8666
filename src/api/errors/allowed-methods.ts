/**
 * Which methods the app serves on a concrete path, so an unmatched request can
 * be told 405 with `Allow` instead of 404 (RFC 9110 15.5.6). Fastify's router
 * answers both as not found; this index is filled from its onRoute hook.
 * Wildcard routes (the web UI's `/*` fallback) are catch-alls, not resources,
 * so they never make a path "known".
 */
export interface AllowedMethods {
  add(method: string | readonly string[], url: string): void;
  /** The methods served on `path` (no query string), sorted; empty for an unknown path. */
  of(path: string): string[];
}

export function createAllowedMethods(): AllowedMethods {
  const routes: Array<{ pattern: RegExp; methods: readonly string[] }> = [];
  return {
    add(method, url) {
      if (url.includes("*")) return;
      // `:name` matches one non-empty segment, as in Fastify's router; everything else is literal.
      const source = url
        .split("/")
        .map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
        .join("/");
      routes.push({ pattern: new RegExp(`^${source}/?$`), methods: [method].flat() });
    },
    of(path) {
      const methods = new Set<string>();
      for (const route of routes) if (route.pattern.test(path)) for (const method of route.methods) methods.add(method);
      return [...methods].sort();
    },
  };
}
