import type { BenchReport } from "./summarize-report.ts";

const colors: Record<string, string> = {
  sluice: "#1f77b4",
  "sluice-openai-start": "#9467bd",
  "sluice-openai-split": "#17becf",
  "sluice-openai-embedded": "#bcbd22",
  "sluice-openai-start-post": "#e377c2",
  "sluice-openai-split-post": "#aec7e8",
  "provider-direct": "#8c564b",
  polling: "#d62728",
  pubsub: "#ff7f0e",
  resumable: "#2ca02c",
  direct: "#7f7f7f",
};
const width = 1000;
const height = 420;
const panel = { width: 420, height: 300, top: 60 };

/**
 * A hand-written SVG with two panels: the token-latency CDF of every system at
 * the reference load, and the capacity curve (p99 against concurrent streams,
 * solid at the first rate, dashed at the second) with the 100 ms limit.
 */
export function renderChart(report: BenchReport): string {
  const parts: string[] = [];
  const logX = (value: number, min: number, max: number, left: number): number =>
    left + ((Math.log10(Math.max(min, Math.min(max, value))) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) * panel.width;
  const logY = (value: number, min: number, max: number): number =>
    panel.top + panel.height - ((Math.log10(Math.max(min, Math.min(max, value))) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) * panel.height;
  const axes = (left: number, title: string, xLabel: string, yLabel: string): void => {
    parts.push(`<rect x="${left}" y="${panel.top}" width="${panel.width}" height="${panel.height}" fill="none" stroke="#444"/>`);
    parts.push(`<text x="${left + panel.width / 2}" y="${panel.top - 12}" text-anchor="middle" font-weight="bold">${title}</text>`);
    parts.push(`<text x="${left + panel.width / 2}" y="${panel.top + panel.height + 36}" text-anchor="middle">${xLabel}</text>`);
    parts.push(`<text transform="translate(${left - 44} ${panel.top + panel.height / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);
  };

  // Panel 1: CDF, x = latency (ms, log), y = percentile.
  const left1 = 70;
  const reference = report.settings.steps[0];
  const firstRate = report.settings.rates[0];
  axes(left1, `Token latency CDF @ ${reference} streams x ${firstRate} tokens/s`, "latency, ms (log)", "percentile");
  for (const tick of [0.1, 1, 10, 100, 1000]) {
    const x = logX(tick, 0.1, 1000, left1);
    parts.push(`<line x1="${x}" y1="${panel.top}" x2="${x}" y2="${panel.top + panel.height}" stroke="#ddd"/><text x="${x}" y="${panel.top + panel.height + 16}" text-anchor="middle">${tick}</text>`);
  }
  for (const tick of [0, 50, 90, 99, 100]) {
    const y = panel.top + panel.height - (tick / 100) * panel.height;
    parts.push(`<text x="${left1 - 6}" y="${y + 4}" text-anchor="end">${tick}</text>`);
  }
  for (const system of report.settings.systems) {
    const step = report.steps.find((candidate) => candidate.system === system && candidate.scenario === "sweep" && candidate.streams === reference && candidate.tokensPerSecond === firstRate);
    if (!step) continue;
    const points = step.result.latencyMs.cdf
      .filter(([, value]) => Number.isFinite(value))
      .map(([percentile, value]) => `${logX(value, 0.1, 1000, left1).toFixed(1)},${(panel.top + panel.height - (percentile / 100) * panel.height).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${colors[system] ?? "#000"}" stroke-width="2" points="${points.join(" ")}"/>`);
  }

  // Panel 2: p99 against streams, both log.
  const left2 = 560;
  axes(left2, "Capacity: p99 token latency vs concurrent streams", "concurrent streams (log)", "p99 ms (log)");
  const maxStreams = Math.max(10, ...report.settings.steps);
  const minStreams = Math.max(1, Math.min(...report.settings.steps) / 2);
  for (const tick of [10, 100, 1000, 10000].filter((value) => value >= minStreams && value <= maxStreams * 2)) {
    const x = logX(tick, minStreams, maxStreams * 2, left2);
    parts.push(`<line x1="${x}" y1="${panel.top}" x2="${x}" y2="${panel.top + panel.height}" stroke="#ddd"/><text x="${x}" y="${panel.top + panel.height + 16}" text-anchor="middle">${tick}</text>`);
  }
  for (const tick of [1, 10, 100, 1000, 10000]) {
    const y = logY(tick, 1, 30000);
    parts.push(`<text x="${left2 - 6}" y="${y + 4}" text-anchor="end">${tick}</text>`);
  }
  const limitY = logY(100, 1, 30000);
  parts.push(`<line x1="${left2}" y1="${limitY}" x2="${left2 + panel.width}" y2="${limitY}" stroke="#000" stroke-dasharray="2,3"/><text x="${left2 + panel.width - 4}" y="${limitY - 4}" text-anchor="end">100 ms limit</text>`);
  for (const system of report.settings.systems) {
    report.settings.rates.forEach((rate, index) => {
      const steps = report.steps.filter((step) => step.system === system && step.scenario === "sweep" && step.tokensPerSecond === rate).sort((a, b) => a.streams - b.streams);
      const points = steps.map((step) => `${logX(step.streams, minStreams, maxStreams * 2, left2).toFixed(1)},${logY(step.result.latencyMs.p99, 1, 30000).toFixed(1)}`);
      if (points.length === 0) return;
      parts.push(`<polyline fill="none" stroke="${colors[system] ?? "#000"}" stroke-width="2" ${index > 0 ? 'stroke-dasharray="6,4"' : ""} points="${points.join(" ")}"/>`);
      for (const step of steps) {
        const x = logX(step.streams, minStreams, maxStreams * 2, left2);
        const y = logY(step.result.latencyMs.p99, 1, 30000);
        parts.push(step.passed ? `<circle cx="${x}" cy="${y}" r="3" fill="${colors[system] ?? "#000"}"/>` : `<text x="${x}" y="${y + 4}" text-anchor="middle" fill="${colors[system] ?? "#000"}">x</text>`);
      }
    });
  }

  // Legend.
  report.settings.systems.forEach((system, index) => {
    // Two rows of four: eight systems do not fit one row.
    const x = 70 + (index % 4) * 230;
    const y = 14 + Math.floor(index / 4) * 16;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${colors[system] ?? "#000"}" stroke-width="3"/><text x="${x + 30}" y="${y + 4}">${system}</text>`);
  });
  parts.push(`<text x="${width - 10}" y="${height - 6}" text-anchor="end" fill="#666">solid: ${report.settings.rates[0]} tokens/s, dashed: ${report.settings.rates[1] ?? "-"} tokens/s; x = failed step</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join("\n")}\n</svg>\n`;
}
