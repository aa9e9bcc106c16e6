// The node's address leaving the host while it runs (a DHCP lease renewed with another
// address, someone removing it): said, and with autodetection, a restart with the new one.
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { followNodeAddress, type NodeAddress } from "./address-gone.js";

function setup(how: string, host: Map<string, string>, detect: () => Promise<NodeAddress>) {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const exits: number[] = [];
  const reads = { n: 0 };
  const f = followNodeAddress({
    address: { cidr: "10.30.0.11/24", uplink: "eth0", how },
    hostAddresses: async () => (reads.n++, new Map(host)),
    detect,
    log,
    exit: (code) => void exits.push(code),
    graceMs: 10_000,
  });
  return { f, lines, exits, reads };
}

const settle = async (ms: number) => {
  await vi.advanceTimersByTimeAsync(ms);
};

describe("the node's address gone from the host while it runs", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("another address removed from the uplink: the node's own is still there, nothing said; several removals, one look after the grace period", async () => {
    const { f, lines, exits, reads } = setup("the default route's interface", new Map([["10.30.0.11", "eth0"]]), async () => ({ cidr: "10.30.0.11/24", uplink: "eth0", how: "x" }));
    f.removed();
    f.removed();
    await settle(9_000);
    expect(reads.n).toBe(0);
    await settle(1_000);
    expect(reads.n).toBe(1);
    expect(f.problem()).toBeNull();
    expect(lines).toEqual([]);
    expect(exits).toEqual([]);
  });

  it("a given address (IP, --ip) gone: said once, in status, until it is back; the node does not exit", async () => {
    const host = new Map<string, string>();
    const { f, lines, exits } = setup("given (IP)", host, async () => {
      throw new Error("not asked for a given address");
    });
    f.removed();
    await settle(10_000);
    expect(f.problem()).toMatch(/its address 10\.30\.0\.11 \(given \(IP\)\) is on no interface of this host: other nodes cannot reach it or its pods/);
    f.recheck();
    await settle(0);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([`this node's address left the host: ${f.problem()}`]);
    host.set("10.30.0.11", "eth0");
    f.recheck();
    await settle(0);
    expect(f.problem()).toBeNull();
    expect(lines.at(-1)?.msg).toBe("this node's address 10.30.0.11 is on eth0 again");
    expect(exits).toEqual([]);
  });

  it("an autodetected address gone and another found (a new DHCP lease): the node exits 1 for its service manager to start it with the new one", async () => {
    const { f, lines, exits } = setup("the default route's interface", new Map([["10.30.0.21", "eth0"]]), async () => ({ cidr: "10.30.0.21/24", uplink: "eth0", how: "the default route's interface" }));
    f.removed();
    await settle(10_000);
    expect(exits).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({ level: 60, msg: expect.stringMatching(/this node's address 10\.30\.0\.11 is gone from eth0 and eth0 has 10\.30\.0\.21\/24 \(the default route's interface\): exiting for the service manager to start the node again with it/) });
  });

  it("an autodetected address gone and none found yet: said and waited for; the next check that finds one exits 1", async () => {
    let now: NodeAddress | undefined;
    const { f, exits } = setup("the default route's interface", new Map(), async () => {
      if (!now) throw new Error("cannot autodetect the node address: no default route");
      return now;
    });
    f.removed();
    await settle(10_000);
    expect(f.problem()).toMatch(/is gone from eth0 and autodetection finds no other \(cannot autodetect the node address: no default route\); waiting for one/);
    expect(exits).toEqual([]);
    now = { cidr: "10.30.0.21/24", uplink: "eth0", how: "the default route's interface" };
    f.recheck();
    await settle(0);
    expect(exits).toEqual([1]);
  });

  it("the host's addresses cannot be read: a warning, and nothing else changes", async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const f = followNodeAddress({
      address: { cidr: "10.30.0.11/24", uplink: "eth0", how: "given (IP)" },
      hostAddresses: async () => {
        throw new Error("ip: command not found");
      },
      detect: async () => ({ cidr: "10.30.0.11/24", uplink: "eth0", how: "x" }),
      log: pino({}, { write: (l: string) => void lines.push(JSON.parse(l)) }),
      exit: () => {
        throw new Error("must not exit");
      },
    });
    f.removed();
    await settle(10_000);
    expect(f.problem()).toBeNull();
    expect(lines.map((l) => l.msg)).toEqual(["could not read this host's addresses; looking again at the next check"]);
  });
});

