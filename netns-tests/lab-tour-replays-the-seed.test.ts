// weft lab tour reproduces every outcome of the seed's walkthrough: which pings work
// and which time out in each mode, and what the packets look like on the wire.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { runTour, type TourOutcome } from "../router/lab/tour.js";

describe("the seed's walkthrough, replayed", () => {
  const lab = useLab("ttour", "ipip", { datastore: "sqlite" });
  let outcomes: TourOutcome[] = [];

  it("runs every step", async () => {
    outcomes = await runTour(lab, (l) => console.log(`[ttour] ${l}`));
    expect(outcomes).toHaveLength(5);
  });

  const cases: Array<[number, string, boolean, boolean, RegExp]> = [
    [0, "IPIP: both reach; IPIP on the wire", true, true, /IP proto 4 \(IPIP\)/],
    [1, "direct with source/destination checks: both time out", false, false, /./],
    [2, "direct, checks off: pod-2 reaches unencapsulated, pod-3 times out", true, false, /no encapsulation/],
    [3, "CrossSubnet: both reach; same-subnet traffic unencapsulated", true, true, /no encapsulation/],
    [4, "VXLAN with BGP off: both reach; VXLAN VNI 4096 on the wire", true, true, /UDP 4789 VXLAN VNI 4096/],
  ];
  for (const [i, what, p2, p3, wire] of cases) {
    it(what, () => {
      const o = outcomes[i];
      expect(o.reached).toEqual({ p1p2: p2, p1p3: p3 });
      expect(o.captured).toMatch(wire);
    });
  }

  it("direct mode routes remote blocks via eth0 (worker-3's via the gateway); CrossSubnet brings weft0 back toward worker-3 only", () => {
    expect(outcomes[1].routesAdded.some((r) => / via 10\.30\.0\.1 dev eth0/.test(r))).toBe(true);
    expect(outcomes[3].routesAdded.filter((r) => r.includes("dev weft0"))).toHaveLength(1);
    expect(outcomes[3].routesAdded[0]).toMatch(/via 10\.30\.1\.13 dev weft0/);
  });
});
