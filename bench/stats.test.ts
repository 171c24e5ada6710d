import { describe, expect, it } from "vitest";
import {
  compareRounds,
  comparisonCaveat,
  formatDifferences,
  goalLine,
  median,
  pairedDifferences,
  roundFigures,
  roundOrder,
  roundsCaveat,
  signed,
  spreadWarning,
  straddles,
  verdict,
  type Goal,
} from "./stats.js";

describe("median", () => {
  it("is the middle value of an odd count, whatever the order", () => {
    expect(median([9, 1, 5, 3, 7])).toBe(5);
  });

  it("is the mean of the middle two of an even count", () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("leaves out rounds without a figure (a failed round is NaN)", () => {
    expect(median([10, Number.NaN, 30, 20])).toBe(20);
  });

  it("is NaN when no round gave a figure", () => {
    expect(median([])).toBeNaN();
    expect(median([Number.NaN])).toBeNaN();
  });

  it("is not pulled by one outlying round, unlike the mean", () => {
    expect(median([100, 101, 99, 100, 900])).toBe(100);
  });
});

describe("roundFigures", () => {
  it("gives the median and the min–max spread over the rounds that have a figure", () => {
    expect(roundFigures([170, 165, Number.NaN, 180, 169])).toEqual({ median: 169.5, min: 165, max: 180, rounds: 4 });
  });

  it("counts no rounds when none gave a figure", () => {
    expect(roundFigures([Number.NaN]).rounds).toBe(0);
  });
});

describe("compareRounds", () => {
  it("takes the difference of the medians, not of the best rounds", () => {
    // "on" has the single fastest round (90), yet its median costs 20 more than "off".
    const off = [100, 100, 101, 99, 100];
    const on = [90, 120, 121, 119, 120];
    const comparison = compareRounds(off, on);
    expect(comparison.difference).toBe(20);
    expect(comparison.relativeDifference).toBeCloseTo(0.2);
  });

  it("tells two sides apart when their rounds scatter less than the gap between the medians", () => {
    const comparison = compareRounds([168, 170, 169, 171, 170], [275, 277, 280, 276, 278]);
    expect(comparison.spread).toBe(5);
    expect(comparison.distinguishable).toBe(true);
    expect(spreadWarning(comparison)).toBeUndefined();
  });

  it("cannot tell them apart when the spread is larger than the difference, and says so with both shares", () => {
    // Off scatters by 20 µs around 100; on is 5 µs higher: the case that once printed "on faster than off".
    const comparison = compareRounds([90, 100, 110, 95, 105], [105, 100, 108, 102, 110]);
    expect(comparison.difference).toBe(5);
    expect(comparison.spread).toBe(20);
    expect(comparison.distinguishable).toBe(false);
    expect(spreadWarning(comparison)).toBe("spread (20.0%) exceeds the difference (5.0%): this comparison cannot tell them apart");
  });

  it("judges the size of a difference, not its sign", () => {
    const cheaper = compareRounds([200, 201, 199], [150, 151, 149]);
    expect(cheaper.difference).toBe(-50);
    expect(cheaper.distinguishable).toBe(true);
  });

  it("has nothing to warn about when a side was not measured", () => {
    const comparison = compareRounds([100, 101], [Number.NaN]);
    expect(comparison.distinguishable).toBe(false);
    expect(spreadWarning(comparison)).toBeUndefined();
  });
});

describe("pairedDifferences", () => {
  it("diff each round's two sides, so drift that moves both alike cancels", () => {
    // The machine got busier round by round; the platform stayed 100 above bare in every round.
    expect(pairedDifferences([100, 150, 200, 250, 300], [200, 250, 300, 350, 400])).toEqual({ median: 100, min: 100, max: 100, rounds: 5 });
  });

  it("leave out a round where either side has no figure", () => {
    expect(pairedDifferences([100, Number.NaN, 100], [110, 130, 120]).rounds).toBe(2);
  });
});

describe("formatDifferences", () => {
  it("prints signed round-by-round differences without an ambiguous dash", () => {
    expect(formatDifferences(pairedDifferences([100, 100, 100], [97, 117, 137]), 0)).toBe("+17, rounds from -3 to +37");
  });
});

describe("goals", () => {
  const atMost25: Goal = { direction: "at most", limit: 25 };
  const atLeast300: Goal = { direction: "at least", limit: 300 };

  it("are MET on the limit itself and MISSED beyond it", () => {
    expect(verdict(25, atMost25)).toBe("MET");
    expect(verdict(25.1, atMost25)).toBe("MISSED");
    expect(verdict(300, atLeast300)).toBe("MET");
    expect(verdict(299.9, atLeast300)).toBe("MISSED");
  });

  it("are NOT MEASURED, never MET, without a figure", () => {
    expect(verdict(Number.NaN, atMost25)).toBe("NOT MEASURED");
  });

  it("print the verdict with the figure", () => {
    const µs = (value: number) => `${signed(value, 0)} µs`;
    expect(goalLine("host extra CPU at c=1", atMost25, 108, µs)).toBe("goal: host extra CPU at c=1 at most +25 µs: MISSED (+108 µs)");
    expect(goalLine("host extra CPU at c=16", atMost25, 14, µs)).toBe("goal: host extra CPU at c=16 at most +25 µs: MET (+14 µs)");
    expect(goalLine("host extra CPU at c=4", atMost25, Number.NaN, µs)).toBe("goal: host extra CPU at c=4 at most +25 µs: NOT MEASURED");
  });

  it("carry a caveat when judged on a comparison that cannot tell its sides apart", () => {
    const unclear = compareRounds([90, 100, 110], [105, 100, 108]);
    const clear = compareRounds([100, 101, 99], [120, 121, 119]);
    expect(comparisonCaveat(unclear)).toBe("spread exceeds the difference");
    expect(comparisonCaveat(clear)).toBeUndefined();
    const line = goalLine("extra CPU", atMost25, unclear.difference, (value) => `${signed(value, 0)} µs`, comparisonCaveat(unclear));
    expect(line).toBe("goal: extra CPU at most +25 µs: MET (+5 µs; spread exceeds the difference)");
  });

  it("say when the rounds fall on both sides of the limit", () => {
    expect(straddles(roundFigures([280, 310, 305]), atLeast300)).toBe(true);
    expect(straddles(roundFigures([301, 310, 305]), atLeast300)).toBe(false);
    expect(straddles(roundFigures([]), atLeast300)).toBe(false);
  });
});

describe("rounds", () => {
  it("alternate the order of the compared sides from one round to the next", () => {
    expect([1, 2, 3, 4].map((round) => roundOrder(["platform", "bare"], round).join(","))).toEqual(["platform,bare", "bare,platform", "platform,bare", "bare,platform"]);
  });

  it("under five are flagged as indicative", () => {
    expect(roundsCaveat(2)).toMatch(/only 2 round/);
    expect(roundsCaveat(5)).toBeUndefined();
  });
});

describe("signed", () => {
  it("marks gains and costs", () => {
    expect(signed(12.4, 0)).toBe("+12");
    expect(signed(-3, 1)).toBe("-3.0");
    expect(signed(0, 0)).toBe("+0");
    expect(signed(Number.NaN, 0)).toBe("-");
  });
});
