/** Percentiles of one measured quantity, in the unit of the samples (ms here). */
export interface Distribution {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** [percentile, value] points for the CDF chart. */
  cdf: Array<[number, number]>;
}

const cdfPoints = [0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9, 100];

export function summarize(samples: readonly number[]): Distribution {
  const sorted = Float64Array.from(samples).sort();
  const at = (percentile: number): number => {
    if (sorted.length === 0) return Number.NaN;
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((percentile / 100) * sorted.length) - 1));
    return round(sorted[index] ?? Number.NaN);
  };
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    mean: round(sorted.length === 0 ? Number.NaN : total / sorted.length),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: at(100),
    cdf: cdfPoints.map((percentile) => [percentile, at(percentile)]),
  };
}

const round = (value: number): number => Math.round(value * 1000) / 1000;
