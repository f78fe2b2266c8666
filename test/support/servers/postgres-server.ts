import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Socket } from "node:net";
import pg from "pg";
import { findExecutable } from "../../../src/embedded/find-executable.ts";
import { findFreePort } from "../../../src/embedded/free-port.ts";
import { recordLeftover } from "./leftovers.ts";

export interface PostgresServer {
  /** Superuser URL of the `postgres` database; tests create their own databases from it. */
  readonly url: string;
  readonly port: number;
  /** The running postmaster's PID (it changes on `restart`). */
  readonly pid: number | undefined;
  /** `pg_ctl stop -m immediate` semantics: SIGQUIT. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * `pg_ctl stop -m immediate`: SIGQUIT to the postmaster, which kills every
   * backend without a checkpoint; resolves when it has exited. The next start
   * runs crash recovery, exactly as after a power cut.
   */
  stopImmediate(): Promise<void>;
  /** Starts the server again on the same port and data directory; resolves once it accepts queries. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const binDirectories = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];
const osUser = "postgres";

/**
 * Starts a throwaway PostgreSQL from the machine's `postgresql` package in a
 * temporary directory. PostgreSQL refuses to run as root, so as root the
 * cluster is owned by and run as the `postgres` OS user.
 */
export async function startPostgresServer(options: { settings?: Record<string, string> } = {}): Promise<PostgresServer> {
  const initdb = findExecutable("initdb", undefined, binDirectories);
  const postgres = findExecutable("postgres", undefined, binDirectories);
  if (!initdb || !postgres) throw new Error("PostgreSQL server binaries not found: apt-get install -y postgresql");
  const asRoot = process.getuid?.() === 0;
  const directory = mkdtempSync(join(tmpdir(), "sluice-pg-"));
  chmodSync(directory, 0o755);
  const dataDirectory = join(directory, "data");
  let identity: { uid: number; gid: number } | Record<string, never> = {};
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", osUser]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", osUser]).toString().trim());
    chownSync(directory, uid, gid);
    identity = { uid, gid };
  }
  execFileSync(initdb, ["-D", dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], {
    stdio: "ignore",
    cwd: directory,
    ...identity,
  });

  const port = await findFreePort();
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    port: String(port),
    unix_socket_directories: directory,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    max_connections: "300",
    shared_preload_libraries: "pg_stat_statements",
    ...options.settings,
  };
  const settingArgs = Object.entries(settings).flatMap(([name, value]) => ["-c", `${name}=${value}`]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const launch = async (): Promise<ChildProcess> => {
    const launched: ChildProcess = spawn(postgres, ["-D", dataDirectory, ...settingArgs], {
      stdio: ["ignore", "ignore", "pipe"],
      cwd: directory,
      ...identity,
    });
    recordLeftover({ pid: launched.pid, directory });
    let stderr = "";
    launched.stderr?.setEncoding("utf8").on("data", (text: string) => {
      if (stderr.length < 10_000) stderr += text;
    });
    const exited = new Promise<never>((_resolve, reject) =>
      launched.once("exit", (code) => reject(new Error(`postgres exited (${String(code)}): ${stderr}`))),
    );
    await Promise.race([waitForPort(port, 30_000), exited]);
    launched.removeAllListeners("exit");
    return launched;
  };
  const running = (process: ChildProcess): boolean => process.exitCode === null && process.signalCode === null;
  const stopWith = async (process: ChildProcess, signal: NodeJS.Signals): Promise<void> => {
    if (!running(process)) return;
    const done = new Promise<void>((resolve) => process.once("exit", () => resolve()));
    process.kill(signal);
    await done;
  };
  let child = await launch();
  // The port opens a moment before the server accepts logins (57P03 "starting up").
  await waitForQueries(url, 30_000);
  return {
    url,
    port,
    get pid() {
      return child.pid;
    },
    kill: (signal = "SIGQUIT") => child.kill(signal),
    stopImmediate: () => stopWith(child, "SIGQUIT"),
    restart: async () => {
      if (running(child)) throw new Error("postgres is still running; stop it first");
      child = await launch();
      // After an immediate stop the port opens during crash recovery, before logins are accepted (57P03).
      await waitForQueries(url, 30_000);
    },
    stop: async () => {
      await stopWith(child, "SIGINT"); // fast shutdown
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function waitForQueries(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`postgres did not accept queries within ${timeoutMs} ms`, { cause: error });
    } finally {
      await client.end().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once("error", () => resolve(false));
      socket.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`postgres did not open port ${port} within ${timeoutMs} ms`);
}
