// A node's readiness (Calico's rule: within 30 s of start every BGP peer must be
// Established, after that one is enough) counts time on the monotonic clock, so a
// step of the wall clock (NTP at boot, a VM resumed) neither shortens nor stretches
// the first 30 s.
import { afterEach, describe, expect, it, vi } from "vitest";
import { bgpStatus } from "./cluster-node.js";
import type { PeerStatus, Speaker } from "../bgp/speaker.js";

function speaker(states: PeerStatus["state"][]): Speaker {
  const peers = states.map((state, i): PeerStatus => ({ address: `10.30.0.${11 + i}`, type: "node-to-node mesh", state, since: new Date(), info: "", prefixesReceived: 0, prefixesSent: 0, established: 0 }));
  return { status: () => peers } as unknown as Speaker;
}

describe("BGP readiness as Calico's", () => {
  afterEach(() => vi.useRealTimers());
  const DAY = 86_400_000;

  it("is ready with no peers, and with BGP off", () => {
    expect(bgpStatus(speaker([]), performance.now())).toMatchObject({ ready: true, reason: "no BGP peers" });
    expect(bgpStatus(undefined, performance.now())).toMatchObject({ ready: true, enabled: false });
  });

  it("within 30 s of start needs every peer Established, after that one", () => {
    vi.useFakeTimers({ toFake: ["Date", "performance"] });
    const startedAt = performance.now();
    expect(bgpStatus(speaker(["up", "start"]), startedAt)).toMatchObject({ ready: false, reason: "BGP not Established with 10.30.0.12" });
    vi.advanceTimersByTime(31_000);
    expect(bgpStatus(speaker(["up", "start"]), startedAt)).toMatchObject({ ready: true });
    expect(bgpStatus(speaker(["down", "start"]), startedAt)).toMatchObject({ ready: false, reason: "BGP not Established with 10.30.0.11, 10.30.0.12" });
  });

  it("a wall clock stepped back an hour after start does not make the node young again", () => {
    vi.useFakeTimers({ toFake: ["Date", "performance"] });
    const startedAt = performance.now();
    vi.advanceTimersByTime(31_000);
    vi.setSystemTime(Date.now() - 3_600_000);
    expect(bgpStatus(speaker(["up", "start"]), startedAt)).toMatchObject({ ready: true });
  });

  it("a wall clock stepped forward a day at start does not end the first 30 s", () => {
    vi.useFakeTimers({ toFake: ["Date", "performance"] });
    const startedAt = performance.now();
    vi.setSystemTime(Date.now() + DAY);
    vi.advanceTimersByTime(1_000);
    expect(bgpStatus(speaker(["up", "start"]), startedAt)).toMatchObject({ ready: false });
  });
});
