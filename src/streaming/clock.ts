export { systemClock, type Clock } from "../time/clock.ts";
