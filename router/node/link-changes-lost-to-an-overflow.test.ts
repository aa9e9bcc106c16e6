// The kernel's interface changes reach the node through one netlink queue, every
// interface's (pods' veths too). When it overflows, changes to eth0 or weft0 may have
// been lost: the node checks what it installed, at most every 5 s, says so at most once
// a minute, and blames nobody. Before, an overflow read as both links set down: every
// burst of pods logged "weft0 was set down by someone else" and "eth0 is up again", and
// the routes through both were installed again (at 100,000 BGP routes, all of them).
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const queue = { overflow: false };
vi.mock("../native/iproute.js", async (actual) => ({
  ...(await actual<typeof import("../native/iproute.js")>()),
  linkInfo: (name: string) => ({ name, mtu: name === "weft0" ? 1480 : 1500, up: true, ifindex: name === "weft0" ? 3 : 2 }),
  LinkChanges: class {
    read() {
      const overflow = queue.overflow;
      queue.overflow = false;
      return { overflow, links: [0, 1].map(() => ({ changes: 0, down: false, addressesRemoved: 0 })) };
    }
    close() {}
  },
}));

const { watchLinks } = await import("./run.js");

function setup() {
  const lines: Array<{ level: number; msg: string; overflows?: number }> = [];
  const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const repairs: number[] = [];
  const gone: string[] = [];
  const w = watchLinks({ uplink: "eth0", tunnel: "weft0", tunnelMTU: () => 1480, routesGoneWith: (dev) => void gone.push(dev) }, log, () => void repairs.push(Date.now()));
  return { w, lines, repairs, gone };
}

describe("interface changes lost to an overflowed queue", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("one overflow: one check, said once, no link blamed and no route forgotten", async () => {
    const { w, lines, repairs, gone } = setup();
    queue.overflow = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(repairs).toHaveLength(1);
    expect(gone).toEqual([]);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^the kernel announced interface changes faster than the node reads them .*: checking eth0's and weft0's routes and state now$/)]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(repairs).toHaveLength(1);
    w.stop();
  });

  it("overflowing every second for 30 s: a check every 5 s, said once a minute with the count", async () => {
    const { w, lines, repairs } = setup();
    for (let s = 0; s < 30; s++) {
      queue.overflow = true;
      await vi.advanceTimersByTimeAsync(1000);
    }
    console.log(`[overflow] 30 overflows in 30 s: ${repairs.length} checks, ${lines.length} log lines`);
    expect(repairs.length).toBeGreaterThanOrEqual(5);
    expect(repairs.length).toBeLessThanOrEqual(6);
    expect(lines).toHaveLength(1);
    for (let s = 0; s < 40; s++) {
      queue.overflow = true;
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(lines).toHaveLength(2);
    expect(lines[1].overflows).toBeGreaterThan(25);
    w.stop();
  });
});
