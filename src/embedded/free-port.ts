import { createServer } from "node:net";

/**
 * Asks the kernel for a free loopback TCP port. The port is released before it
 * is returned, so a caller that binds it races other processes doing the same;
 * callers that spawn servers retry on a bind failure.
 */
export async function findFreePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("could not read the bound port"));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}
