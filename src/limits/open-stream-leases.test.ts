import { describe, expect, it } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import { isSluiceError } from "../errors/catalog.ts";
import { createOpenStreamLeases } from "./open-stream-leases.ts";

describe("open-stream leases", () => {
  it("caps a user's open streams, frees a slot on release, renews, and lets a crashed holder's lease lapse", async () => {
    const redis = connectTestRedis();
    let now = 1_000_000;
    const leases = createOpenStreamLeases({ redis, keyPrefix: uniqueKeyPrefix("lease"), limit: 2, leaseMs: 1_000, clock: { wallClockMs: () => now } });
    const first = await leases.acquire("u1");
    const second = await leases.acquire("u1");
    const refused = await leases.acquire("u1").catch((error: unknown) => error);
    expect(isSluiceError(refused) && refused.code).toBe("TOO_MANY_OPEN_STREAMS");
    await (await leases.acquire("u2")).release(); // the cap is per user

    await second.release();
    const third = await leases.acquire("u1");

    // `first` keeps renewing; `third` stops (its process "crashed"): only `third` lapses.
    now += 800;
    await first.renew();
    now += 800;
    const fourth = await leases.acquire("u1");
    await expect(leases.acquire("u1")).rejects.toMatchObject({ code: "TOO_MANY_OPEN_STREAMS" });
    await Promise.all([first.release(), third.release(), fourth.release()]);
  });
});
