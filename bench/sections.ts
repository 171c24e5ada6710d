import { edgeSection } from "./edge.js";
import { hostVsBareSection } from "./host-vs-bare.js";
import { observabilitySection } from "./observability.js";
import type { BenchOptions } from "./options.js";
import { sagaSection } from "./saga.js";
import type { BenchSection } from "./section.js";
import { startSection } from "./start.js";
import { streamsSection } from "./streams.js";

/** Every section of `npm run bench`, in the order they run; add one here. */
export const SECTIONS: readonly BenchSection[] = [hostVsBareSection, observabilitySection, edgeSection, sagaSection, streamsSection, startSection];

/** The sections a run selects: all but the onlyWhenNamed ones when none is named. */
export function selectSections(options: BenchOptions): readonly BenchSection[] {
  return SECTIONS.filter((section) => (options.sections.length === 0 ? !section.onlyWhenNamed : options.sections.includes(section.name)));
}

/** What the selected sections are expected to take, ms (printed up front). */
export function estimateMs(sections: readonly BenchSection[], options: BenchOptions): number {
  return sections.reduce((sum, section) => sum + section.estimateMs(options), 0);
}
