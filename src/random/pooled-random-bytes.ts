import { randomBytes } from "node:crypto";

const poolSize = 4096;
let pool = randomBytes(poolSize);
let used = 0;

/**
 * Random bytes from the same CSPRNG as `randomBytes`, drawn 4 KiB at a time and handed out
 * once each, as Node's own `randomUUID` caches its entropy. On the start path a
 * `randomBytes` call per id cost 50–70 µs of CPU in the burst profile (BENCHMARKS.md, eighth
 * session), against under 1 µs from the pool. For ids made on every request (task ids, lease
 * members, log incarnations); long-lived secrets (session tokens, keys, salts) still call
 * `randomBytes` themselves.
 */
export function pooledRandomBytes(size: number): Buffer {
  if (size > poolSize) return randomBytes(size);
  if (used + size > poolSize) {
    pool = randomBytes(poolSize);
    used = 0;
  }
  const bytes = pool.subarray(used, used + size);
  used += size;
  return bytes;
}
