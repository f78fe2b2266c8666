/** PATH, for finding server binaries (redis-server). Kept here: only src/config reads process.env. */
export function readSearchPath(): string | undefined {
  return process.env.PATH;
}
