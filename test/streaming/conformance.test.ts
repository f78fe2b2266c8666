/**
 * PROTOCOL.md conformance of Sluice itself: the suite of ./conformance/ against
 * the real app (`startRuntime`, in this process), its real stream route, hub,
 * leases and cancel path. See ./conformance/sluice-target.ts.
 */
import { describeConformance } from "./conformance/describe-conformance.ts";
import { startSluiceTarget } from "./conformance/sluice-target.ts";

describeConformance("Sluice", startSluiceTarget);
