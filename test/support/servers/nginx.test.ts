import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nginxConfig, nginxExecutable, startNginx } from "./nginx.ts";

describe.skipIf(!existsSync(nginxExecutable))("startNginx", () => {
  const upstream = createServer((request, response) => {
    response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ path: request.url, via: request.headers.host }));
  });
  let upstreamPort = 0;
  beforeAll(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => upstream.close(resolve));
  });

  it("proxies to the upstream port, and stop() ends its own process and removes its directory", async () => {
    const nginx = await startNginx({ upstreamPort });
    let stopped = false;
    try {
      const response = await fetch(`${nginx.url}/some/path?x=1`);
      expect(response.status).toBe(200);
      expect(response.headers.get("server")).toMatch(/^nginx/);
      expect(await response.json()).toMatchObject({ path: "/some/path?x=1" });
      const directory = /pid (\S+)\/nginx\.pid;/.exec(nginx.config)?.[1];
      expect(directory && existsSync(directory)).toBe(true);
      await nginx.stop();
      stopped = true;
      expect(existsSync(directory ?? "")).toBe(false);
      expect(() => process.kill(nginx.pid, 0)).toThrow();
    } finally {
      if (!stopped) await nginx.stop();
    }
  });

  it("leaves proxy buffering and the read timeout at nginx's defaults, and gzips event streams", () => {
    const config = nginxConfig({ directory: "/tmp/x", port: 8080, upstreamPort: 3000 });
    expect(config).not.toMatch(/proxy_buffering|proxy_read_timeout/);
    expect(config).toMatch(/gzip_types [^;]*text\/event-stream/);
    expect(config).toContain("proxy_pass http://127.0.0.1:3000;");
  });

  it("runs two at once on different ports", async () => {
    const [first, second] = await Promise.all([startNginx({ upstreamPort }), startNginx({ upstreamPort })]);
    try {
      expect(first.url).not.toBe(second.url);
      expect((await fetch(`${second.url}/`)).status).toBe(200);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
