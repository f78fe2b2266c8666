import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";

/**
 * scrypt's cost (N, a power of two), block size (r) and parallelization (p). Production uses
 * OWASP's minimum, N=2^17, r=8, p=1: 128 MiB and a few hundred ms of one core per hash, which
 * is why src/limits/concurrency-gate.ts caps how many run at once (LIMIT_PASSWORD_HASHES).
 */
export interface ScryptParameters {
  readonly cost: number;
  readonly blockSize: number;
  readonly parallelization: number;
}

export interface PasswordCheck {
  valid: boolean;
  /** The stored hash was made with other parameters: rehash it now that the password is known. */
  outdated: boolean;
}

export interface PasswordHasher {
  /** Returns `scrypt$N$r$p$salt$hash` (base64url salt and hash): the parameters travel with the hash. */
  hash(password: string): Promise<string>;
  /** Constant-time check with the stored hash's own parameters; a malformed hash simply fails. */
  verify(password: string, stored: string): Promise<PasswordCheck>;
  /**
   * Runs one real verification against a hash of a random password, for an unknown email, so a
   * failed sign-in costs the same time whether or not the account exists. Always false.
   */
  verifyUnknown(password: string): Promise<false>;
}

const keyLength = 32;
// Stored hashes outside these bounds are treated as malformed rather than run (2^20 × 16 = 2 GiB).
const maximum = { cost: 2 ** 20, blockSize: 16, parallelization: 4 };

/**
 * Memory scrypt needs (OpenSSL: 128·r·(N+2) for V plus 128·r·p for B), with 1 MiB to spare.
 * Node's default `maxmem` is 32 MiB, which N=2^17 (128 MiB) would exceed.
 */
export function scryptMemoryBytes(parameters: ScryptParameters): number {
  return 128 * parameters.blockSize * (parameters.cost + 2 + parameters.parallelization) + 1024 * 1024;
}

function scrypt(password: string, salt: Buffer, parameters: ScryptParameters): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(
      password.normalize("NFKC"),
      salt,
      keyLength,
      { N: parameters.cost, r: parameters.blockSize, p: parameters.parallelization, maxmem: scryptMemoryBytes(parameters) },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

function parse(stored: string): { parameters: ScryptParameters; salt: Buffer; hash: Buffer } | undefined {
  const [scheme, n, r, p, salt, hash, ...rest] = stored.split("$");
  if (scheme !== "scrypt" || !n || !r || !p || !salt || !hash || rest.length > 0) return undefined;
  const parameters = { cost: Number(n), blockSize: Number(r), parallelization: Number(p) };
  const inRange = (value: number, max: number): boolean => Number.isSafeInteger(value) && value >= 1 && value <= max;
  if (!inRange(parameters.cost, maximum.cost) || !inRange(parameters.blockSize, maximum.blockSize) || !inRange(parameters.parallelization, maximum.parallelization)) return undefined;
  if ((parameters.cost & (parameters.cost - 1)) !== 0 || parameters.cost < 2) return undefined;
  return { parameters, salt: Buffer.from(salt, "base64url"), hash: Buffer.from(hash, "base64url") };
}

const sameParameters = (a: ScryptParameters, b: ScryptParameters): boolean =>
  a.cost === b.cost && a.blockSize === b.blockSize && a.parallelization === b.parallelization;

/**
 * @example const hasher = createPasswordHasher(config.auth.passwordHashing);
 */
export function createPasswordHasher(parameters: ScryptParameters): PasswordHasher {
  const hash = async (password: string): Promise<string> => {
    const salt = randomBytes(16);
    const key = await scrypt(password, salt, parameters);
    return ["scrypt", parameters.cost, parameters.blockSize, parameters.parallelization, salt.toString("base64url"), key.toString("base64url")].join("$");
  };
  const verify = async (password: string, stored: string): Promise<PasswordCheck> => {
    const parsed = parse(stored);
    if (!parsed) return { valid: false, outdated: false };
    const actual = await scrypt(password, parsed.salt, parsed.parameters);
    const valid = actual.length === parsed.hash.length && timingSafeEqual(actual, parsed.hash);
    return { valid, outdated: valid && !sameParameters(parsed.parameters, parameters) };
  };
  // Made on first use, not at import: it costs one full hash.
  let unknownHash: Promise<string> | undefined;
  return {
    hash,
    verify,
    verifyUnknown: async (password) => {
      unknownHash ??= hash(randomBytes(16).toString("hex"));
      await verify(password, await unknownHash);
      return false;
    },
  };
}
