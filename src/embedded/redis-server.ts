import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Socket } from "node:net";
import { sleep, systemClock } from "../time/clock.ts";
import { findFreePort } from "./free-port.ts";
import { ensurePrivateDirectory } from "./private-files.ts";

export interface RedisServerOptions {
  /** Absolute path of the redis-server binary. */
  executable: string;
  /** Directory for the AOF and RDB files; created if missing. */
  dataDirectory: string;
  /** Append-only file on (the durable default) or no persistence at all (tests of data loss). */
  appendOnly: boolean;
  /** Restart the server when it exits unexpectedly. */
  supervise: boolean;
  /** Fixed port, or undefined for a free loopback port. */
  port?: number;
  /**
   * `requirepass`: clients must AUTH with it, and `url` carries it. It goes to
   * redis-server on stdin, never on the command line (which every local user can read in /proc).
   */
  password?: string;
  /**
   * Also listen on this unix socket (mode 0700), and answer `socketUrl` for it: a command over a
   * unix socket costs client and server about 40 % less CPU than over TCP loopback.
   */
  unixSocket?: string;
  /** Extra `--name value` arguments, e.g. maxmemory for out-of-memory tests. */
  extraArguments?: readonly string[];
  onLog?: (line: string) => void;
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface RedisServer {
  /** `redis://[:password@]127.0.0.1:<port>`: a credential when a password is set; never log it. */
  readonly url: string;
  /** `unix:///path[?password=…]` when `unixSocket` was given: a credential too. */
  readonly socketUrl: string | undefined;
  readonly port: number;
  /** PID of the current child process (changes after a supervised restart). */
  pid(): number | undefined;
  /** SIGTERM, which makes redis flush the AOF, then wait for the exit; SIGKILL after the timeout. */
  stop(timeoutMs?: number): Promise<void>;
}

const startAttempts = 5;

/**
 * Spawns a redis-server bound to 127.0.0.1 and resolves once it answers PING.
 * Its PID is kept in `<dataDirectory>/sluice-redis.pid`: a server left behind by
 * a previous run that was killed with SIGKILL is stopped before a new one starts
 * on the same files. An exit of this process kills the child synchronously.
 */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  if (options.password !== undefined && !/^[A-Za-z0-9_-]{16,}$/.test(options.password)) {
    throw new Error("the redis-server password must be at least 16 letters, digits, '-' or '_' (it is written unquoted)");
  }
  ensurePrivateDirectory(options.dataDirectory);
  await stopLeftoverServer(pidFileOf(options.dataDirectory));
  let lastError: unknown;
  for (let attempt = 0; attempt < startAttempts; attempt += 1) {
    const port = options.port ?? (await findFreePort());
    try {
      return await launch(options, port);
    } catch (error) {
      lastError = error;
      // Each failed attempt can take the whole PING deadline: say so, or a slow start looks like a hang.
      options.onLog?.(`redis-server start attempt ${attempt + 1} on port ${port} failed: ${String(error)}`);
      if (options.port !== undefined) break;
    }
  }
  throw new Error(`redis-server did not start: ${String(lastError)}`);
}

async function launch(options: RedisServerOptions, port: number): Promise<RedisServer> {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;

  const spawnChild = async (): Promise<void> => {
    const args = [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--dir", options.dataDirectory,
      "--appendonly", options.appendOnly ? "yes" : "no",
      "--save", "",
      "--daemonize", "no",
      "--protected-mode", "yes",
      "--maxmemory-policy", "noeviction",
      ...(options.unixSocket === undefined ? [] : ["--unixsocket", options.unixSocket, "--unixsocketperm", "700"]),
      ...(options.extraArguments ?? []),
      // A trailing "-": the rest of the configuration (the password) comes on stdin.
      ...(options.password === undefined ? [] : ["-"]),
    ];
    // Its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) reaches only
    // Sluice, which stops the server itself, instead of killing it mid-shutdown and logging a
    // crash. A server left behind by a SIGKILLed Sluice is stopped at the next start (stopLeftoverServer).
    const started = spawn(options.executable, args, { detached: true, stdio: [options.password === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    started.stdin?.on("error", () => undefined);
    started.stdin?.end(options.password === undefined ? undefined : `requirepass ${options.password}\n`);
    child = started;
    if (started.pid !== undefined) writeFileSync(pidFileOf(options.dataDirectory), String(started.pid));
    const exited = new Promise<never>((_resolve, reject) => {
      started.once("error", reject);
      started.once("exit", (code) => reject(new Error(`redis-server exited with code ${String(code)}`)));
    });
    started.stdout?.setEncoding("utf8").on("data", (text: string) => forwardLines(text, options.onLog));
    started.stderr?.setEncoding("utf8").on("data", (text: string) => forwardLines(text, options.onLog));
    await Promise.race([waitForPong(port, options.password, 10_000), exited]);
    started.removeAllListeners("exit");
    started.once("exit", (code, signal) => {
      if (stopping) return;
      options.onUnexpectedExit?.(code, signal);
      if (options.supervise) restartAfter(500);
    });
  };

  // A supervised server is started again until it stays up: a restart that fails (a port still
  // held, an AOF being repaired, a loaded machine missing the PING deadline) is retried with a
  // backoff up to 5 s, never given up, while this process has not asked it to stop.
  // Raw timers here and in `stop`: they supervise a real child process, on real time only.
  const restartAfter = (delayMs: number): void => {
    restartTimer = setTimeout(() => {
      if (stopping) return;
      spawnChild().catch((error: unknown) => {
        options.onLog?.(`redis-server restart failed: ${String(error)}; trying again`);
        child?.kill("SIGKILL");
        if (!stopping) restartAfter(Math.min(delayMs * 2, 5_000));
      });
    }, delayMs);
  };

  const killOnExit = (): void => {
    child?.kill("SIGKILL");
  };
  try {
    await spawnChild();
  } catch (error) {
    killOnExit();
    throw error;
  }
  process.once("exit", killOnExit);

  return {
    url: `redis://${options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`}127.0.0.1:${port}`,
    socketUrl: options.unixSocket === undefined ? undefined : `unix://${options.unixSocket}${options.password === undefined ? "" : `?password=${encodeURIComponent(options.password)}`}`,
    port,
    pid: () => child?.pid,
    stop: async (timeoutMs = 10_000) => {
      stopping = true;
      process.removeListener("exit", killOnExit);
      if (restartTimer) clearTimeout(restartTimer);
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => current.once("exit", () => resolve()));
      current.kill("SIGTERM");
      const timer = setTimeout(() => current.kill("SIGKILL"), timeoutMs);
      await exited;
      clearTimeout(timer);
      rmSync(pidFileOf(options.dataDirectory), { force: true });
    },
  };
}

function forwardLines(text: string, onLog: ((line: string) => void) | undefined): void {
  if (!onLog) return;
  for (const line of text.split("\n")) if (line.trim()) onLog(line.trim());
}

/** Polls with raw PING over TCP during startup only; there is no other way to know redis is up. */
async function waitForPong(port: number, password: string | undefined, timeoutMs: number): Promise<void> {
  const deadline = systemClock.monotonicMs() + timeoutMs;
  while (systemClock.monotonicMs() < deadline) {
    if (await pingOnce(port, password)) return;
    await sleep(systemClock, 25);
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
}

async function pingOnce(port: number, password: string | undefined): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = new Socket();
    let received = "";
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once("error", () => finish(false));
    // RESP inline commands; the password is hex, so it needs no quoting.
    socket.connect(port, "127.0.0.1", () => socket.write(`${password === undefined ? "" : `AUTH ${password}\r\n`}PING\r\n`));
    socket.on("data", (data) => {
      received += data.toString();
      if (received.includes("+PONG")) finish(true);
      else if (received.startsWith("-") || received.includes("\r\n-")) finish(false);
    });
  });
}

function pidFileOf(dataDirectory: string): string {
  return join(dataDirectory, "sluice-redis.pid");
}

/** Stops a redis-server that an earlier run of ours started on this data directory and never stopped. */
async function stopLeftoverServer(pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return;
  }
  // Ours is the redis-server that works in this data directory (`--dir` makes it chdir there): a PID
  // is reused once it wraps (pid_max can be 32768), and a stale pid file may name another redis-server.
  const directory = realpathSync(dirname(pidFile));
  const isOurs = (): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("redis-server") && readlinkSync(`/proc/${pid}/cwd`) === directory;
    } catch {
      return false;
    }
  };
  if (Number.isInteger(pid) && pid > 0 && isOurs()) {
    process.kill(pid, "SIGTERM");
    const deadline = systemClock.monotonicMs() + 10_000;
    while (isOurs() && systemClock.monotonicMs() < deadline) await sleep(systemClock, 50);
    if (isOurs()) process.kill(pid, "SIGKILL");
  }
  rmSync(pidFile, { force: true });
}
