export { systemClock, wallClockMs, type Clock } from "../time/clock.ts";
