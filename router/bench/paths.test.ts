// Which bench paths a machine can measure: one that needs a tool this machine lacks is
// left out with a line saying which, not failed half-way through the run.
import { describe, expect, it } from "vitest";
import { BENCH_PATHS, measurablePaths } from "./paths.js";

describe("bench paths", () => {
  it("leaves out the NIC-like GRO row without ethtool, saying so, and keeps the rest in order", () => {
    const without = measurablePaths(BENCH_PATHS, (tool) => tool !== "ethtool");
    expect(without.paths).toEqual(BENCH_PATHS.filter((p) => p !== "weft-ipip-nicgro"));
    expect(without.leftOut).toEqual(["weft-ipip-nicgro left out: ethtool is not installed (apt install ethtool)"]);
    expect(measurablePaths(BENCH_PATHS, () => true)).toEqual({ paths: [...BENCH_PATHS], leftOut: [] });
  });
});
