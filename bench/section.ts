import type { ChildGroup } from "./child-group.js";
import type { BenchOptions } from "./options.js";

/** What a section gets: the options, where to print, and the group its child processes belong to. */
export interface BenchContext {
  readonly options: BenchOptions;
  readonly print: (line?: string) => void;
  readonly children: ChildGroup;
}

export interface SectionOutcome {
  /** Calls that failed; any makes `npm run bench` exit non-zero (a miss of a target does not). */
  readonly failedCalls: number;
}

/** One figure of `npm run bench`, e.g. "host-vs-bare"; later ones (a saga hop) sit beside it. */
export interface BenchSection {
  readonly name: string;
  /** Left out of a run that names no section (a long one): `npm run bench -- <name>` runs it. */
  readonly onlyWhenNamed?: boolean;
  /** Rough duration with the given options, printed up front. */
  estimateMs(options: BenchOptions): number;
  run(context: BenchContext): Promise<SectionOutcome>;
}
