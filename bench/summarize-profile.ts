// `node bench/summarize-profile.ts <file.cpuprofile> [top]`: self time of a
// `node --cpu-prof` profile (what `npm run bench -- --profile` writes to
// bench/results/profiles), grouped by where the code lives and by function.
// `--from=<seconds>` drops the samples taken before that offset (the boot, for a
// steady-state view of a process that was profiled from its start), `--to=<seconds>`
// those after it (a ramp alone); `--timeline` first prints the busy share of each second.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error("usage: node bench/summarize-profile.ts <file.cpuprofile> [top]");
const top = Number(process.argv.slice(3).find((argument) => !argument.startsWith("--")) ?? 15);
const secondsOption = (name: string, fallback: number): number => Number(process.argv.find((argument) => argument.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback) * 1e6;
const fromMicros = secondsOption("from", 0);
const toMicros = secondsOption("to", Number.POSITIVE_INFINITY);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map<number, number>();
let elapsedMicros = 0;
profile.samples.forEach((id, index) => {
  const delta = profile.timeDeltas[index] ?? 0;
  elapsedMicros += delta;
  if (elapsedMicros >= fromMicros && elapsedMicros < toMicros) selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
});

if (process.argv.includes("--timeline")) {
  // Busy share per second of the profile: where a ramp or a stall is, to pick --from and --to.
  const idleIds = new Set(profile.nodes.filter((node) => node.callFrame.functionName === "(idle)").map((node) => node.id));
  const busyPerSecond: number[] = [];
  let at = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    const second = Math.floor(at / 1e6);
    if (!idleIds.has(id)) busyPerSecond[second] = (busyPerSecond[second] ?? 0) + delta;
  });
  console.log(`busy share by second: ${Array.from(busyPerSecond, (micros, second) => `${second}s ${Math.round((micros ?? 0) / 1e4)}%`).join(", ")}`);
}

/** node_modules/<package>, src/<folder>, node:<internal>, or the V8 pseudo-frames ((idle), (garbage collector), (program)). */
const placeOf = (url: string, name: string): string => {
  if (url === "") return name.startsWith("(") ? name : "(native)";
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module) return module[1] ?? url;
  const source = /\/(src|bench|test)\/([^/]+)/.exec(url);
  if (source) return `${source[1]}/${source[2]}`;
  if (url.startsWith("node:")) return url.split("/")[0] ?? url;
  return url;
};

const byPlace = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
for (const [id, micros] of selfMicros) {
  const node = byId.get(id);
  if (!node) continue;
  total += micros;
  const { functionName, url, lineNumber } = node.callFrame;
  const place = placeOf(url, functionName);
  byPlace.set(place, (byPlace.get(place) ?? 0) + micros);
  if (functionName === "(idle)") continue;
  const key = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(node_modules|src|bench)\//, "$1/")}:${lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
}
const busy = total - (byPlace.get("(idle)") ?? 0);
const print = (title: string, entries: Map<string, number>): void => {
  process.stdout.write(`\n${title} (share of busy time; busy = ${(busy / 1e6).toFixed(1)} s of ${(total / 1e6).toFixed(1)} s)\n`);
  for (const [name, micros] of [...entries].filter(([name]) => name !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((micros / busy) * 100).toFixed(1).padStart(6)}%  ${name}\n`);
  }
};
print("self time by place", byPlace);
print("self time by function", byFunction);
