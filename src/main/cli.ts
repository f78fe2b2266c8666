#!/usr/bin/env node
// The `sluice` command: start | api | worker | migrate. The only place that
// reads process.argv and installs signal handlers.
import { enableCompileCache } from "node:module";
import { ConfigError, loadConfig } from "../config/config.ts";
import { readSearchPath } from "../config/read-environment.ts";
import { createLogger } from "../logging/create-logger.ts";
import { startRuntime, type Role } from "./runtime.ts";

const usage = `Usage: sluice <command>

Commands:
  start     API and worker in one process (the default for \`npm start\`)
  api       the HTTP API alone
  worker    the generation worker alone
  migrate   apply database migrations and exit

Configuration is read from environment variables; see README.md.`;

const roles: readonly Role[] = ["start", "api", "worker", "migrate"];

// Node keeps compiled (and type-stripped) modules on disk between runs, so every later start
// of `sluice` skips most of its module compilation (issue 13: worker start-up time). The role's
// modules are imported after this line (runtime.ts loads them per role).
enableCompileCache();

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0];
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${usage}\n`);
    return command === undefined ? 2 : 0;
  }
  if (!roles.includes(command as Role)) {
    process.stderr.write(`Unknown command: ${command}\n\n${usage}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(process.env, process.cwd());
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  const runtime = await startRuntime(command as Role, config, logger, readSearchPath());
  if (command === "migrate") {
    await runtime.stop();
    return 0;
  }
  if (runtime.address) logger.info({ address: runtime.address }, `Sluice is listening on ${runtime.address}`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, "shutting down");
      void runtime.stop().finally(resolve);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`sluice failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
