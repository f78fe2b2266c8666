import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

// Debian puts server binaries outside a non-login PATH (/usr/sbin, /usr/lib/postgresql/N/bin).
const extraDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Returns the absolute path of an executable found on PATH or in the usual system folders, or undefined. */
export function findExecutable(name: string, pathVariable: string | undefined, extra: readonly string[] = []): string | undefined {
  const directories = [...(pathVariable ?? "").split(delimiter).filter(Boolean), ...extra, ...extraDirectories];
  for (const directory of directories) {
    const candidate = join(directory, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
