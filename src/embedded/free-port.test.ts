import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { ephemeralRangeStart, findFreePort } from "./free-port.ts";

describe("findFreePort", () => {
  it("returns a bindable port below the kernel's ephemeral range, so no outbound connection can take it between a server's restarts", async () => {
    const ephemeralLow = ephemeralRangeStart();
    expect(ephemeralLow).toBeTypeOf("number");
    for (let index = 0; index < 20; index += 1) {
      const port = await findFreePort();
      expect(port).toBeGreaterThanOrEqual(24_000);
      expect(port).toBeLessThan(ephemeralLow ?? 0);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", resolve);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
