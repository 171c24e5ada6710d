/** Nearest-rank percentile of an ascending array (p in 0..100); NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

/** Left-aligned first column, right-aligned others, two spaces between. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)];
}

export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "-";
}

/** 0.423 -> "42%" */
export function percent(share: number): string {
  return Number.isFinite(share) ? `${(100 * share).toFixed(0)}%` : "-";
}

/** 12345.6 -> "12,346" */
export function grouped(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-";
}

/** What several rounds of one figure gave: the median and the min–max spread. */
export interface RoundFigures {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Rounds that gave a figure (NaN rounds, e.g. failed ones, are left out). */
  readonly rounds: number;
}

/** Median of the finite values (mean of the middle two for an even count); NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Median and min–max of a figure over rounds; non-finite rounds are left out. */
export function roundFigures(values: readonly number[]): RoundFigures {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, rounds: 0 };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), rounds: finite.length };
}

/** "277 (265–290)": the median, then the spread over rounds. */
export function formatRounds(figures: RoundFigures, digits: number, format: (value: number, digits: number) => string = fixed): string {
  if (figures.rounds === 0) return "-";
  return `${format(figures.median, digits)} (${format(figures.min, digits)}–${format(figures.max, digits)})`;
}

/**
 * Two medians compared against how much the rounds of each side scatter.
 * The difference is `other − base`; the spread is the wider min–max range of
 * the two sides. When the spread is larger than the difference, rounds of the
 * one side overlap those of the other by more than the gap between them, and
 * the comparison cannot tell the two apart: whichever median came out ahead
 * did so by chance as much as by cost.
 */
export interface Comparison {
  readonly base: RoundFigures;
  readonly other: RoundFigures;
  /** other.median − base.median */
  readonly difference: number;
  /** difference / base.median */
  readonly relativeDifference: number;
  /** max(base.max − base.min, other.max − other.min) */
  readonly spread: number;
  /** spread / base.median */
  readonly relativeSpread: number;
  /** Both sides measured, and the spread no larger than the difference. */
  readonly distinguishable: boolean;
}

export function compareRounds(base: readonly number[], other: readonly number[]): Comparison {
  const a = roundFigures(base);
  const b = roundFigures(other);
  const difference = b.median - a.median;
  const spread = Math.max(a.max - a.min, b.max - b.min);
  return {
    base: a,
    other: b,
    difference,
    relativeDifference: difference / a.median,
    spread,
    relativeSpread: spread / a.median,
    distinguishable: a.rounds > 0 && b.rounds > 0 && spread <= Math.abs(difference),
  };
}

/**
 * The line that says a comparison cannot tell its sides apart, or undefined
 * when it can (or when it was not measured: nothing to warn about then).
 */
export function spreadWarning(comparison: Comparison): string | undefined {
  if (comparison.base.rounds === 0 || comparison.other.rounds === 0 || comparison.distinguishable) return undefined;
  return `spread (${fixed(100 * comparison.relativeSpread, 1)}%) exceeds the difference (${fixed(100 * Math.abs(comparison.relativeDifference), 1)}%): this comparison cannot tell them apart`;
}

/** A goal: the figure must be at most, or at least, the limit. */
export interface Goal {
  readonly direction: "at most" | "at least";
  readonly limit: number;
}

export type Verdict = "MET" | "MISSED" | "NOT MEASURED";

export function verdict(figure: number, goal: Goal): Verdict {
  if (!Number.isFinite(figure)) return "NOT MEASURED";
  return (goal.direction === "at most" ? figure <= goal.limit : figure >= goal.limit) ? "MET" : "MISSED";
}

/** "goal: host extra server CPU per call at c=1 at most +25 µs: MET (+12 µs)" */
export function goalLine(name: string, goal: Goal, figure: number, format: (value: number) => string, caveat?: string): string {
  const result = verdict(figure, goal);
  if (result === "NOT MEASURED") return `goal: ${name} ${goal.direction} ${format(goal.limit)}: ${result}`;
  return `goal: ${name} ${goal.direction} ${format(goal.limit)}: ${result} (${format(figure)}${caveat ? `; ${caveat}` : ""})`;
}

/** The caveat a goal judged on a comparison carries when the comparison cannot tell its sides apart. */
export function comparisonCaveat(comparison: Comparison): string | undefined {
  return comparison.base.rounds > 0 && comparison.other.rounds > 0 && !comparison.distinguishable ? "spread exceeds the difference" : undefined;
}

/** "+17, rounds from -3 to +37": a median of signed round-by-round differences with their range. */
export function formatDifferences(figures: RoundFigures, digits: number): string {
  if (figures.rounds === 0) return "-";
  return `${signed(figures.median, digits)}, rounds from ${signed(figures.min, digits)} to ${signed(figures.max, digits)}`;
}

/** "+12" / "-3": a signed figure, for differences. */
export function signed(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "-";
  const text = value.toFixed(digits);
  return value > 0 || (value === 0 && !text.startsWith("-")) ? `+${text}` : text;
}

/** Printed when fewer rounds ran than a median with a meaningful spread needs. */
export const MIN_HONEST_ROUNDS = 5;
export function roundsCaveat(rounds: number): string | undefined {
  return rounds < MIN_HONEST_ROUNDS ? `only ${rounds} round(s) (fewer than ${MIN_HONEST_ROUNDS}): medians and spreads below are indicative only` : undefined;
}

/** True when the rounds fall on both sides of a goal's limit: the median's verdict could flip with one round more. */
export function straddles(figures: RoundFigures, goal: Goal): boolean {
  if (figures.rounds === 0) return false;
  return verdict(figures.min, goal) !== verdict(figures.max, goal);
}

/**
 * The order of the compared sides (servers, reads) in a round: as given in odd rounds, reversed in
 * even ones, so whatever drifts over the run (heat, a neighbour, the JIT)
 * falls on both sides alike.
 */
export function roundOrder<T>(kinds: readonly T[], round: number): readonly T[] {
  return round % 2 === 1 ? kinds : [...kinds].reverse();
}

/**
 * Round-by-round differences `other[i] − base[i]` (both sides of a round ran
 * back to back), as median and min–max. Drift that moves both sides of a round
 * alike cancels here, where it widens the spread of each side.
 */
export function pairedDifferences(base: readonly number[], other: readonly number[]): RoundFigures {
  const length = Math.min(base.length, other.length);
  return roundFigures(Array.from({ length }, (_, index) => other[index]! - base[index]!));
}
