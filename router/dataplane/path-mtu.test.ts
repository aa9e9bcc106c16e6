// Path MTUs the network reports about what a node sent (ICMP fragmentation-needed, or
// the kernel refusing a datagram over one it learned): kept per node as the kernel keeps
// them, and forgotten after the same 10 minutes.
import { afterEach, describe, expect, it, vi } from "vitest";
import { pino } from "pino";
import { Dataplane } from "./dataplane.js";
import { FastPath, ENCAP_IPIP } from "./fastpath.js";
import { parseCIDR, parseIPv4 } from "./addr.js";
import type { SocketError } from "./receiver.js";

const W2 = parseIPv4("10.30.0.12")!;
const W3 = parseIPv4("10.30.1.13")!;
const EMSGSIZE = 90;

function dataplane(): { dp: Dataplane; learn: (e: SocketError[]) => void; expire: (now: number) => void; fp: FastPath } {
  const fp = new FastPath();
  fp.configure({ localAddr: parseIPv4("10.30.0.11")!, underlayMTU: 1500, vtepMAC: "66:93:7f:54:d5:53" });
  fp.upsert({ prefix: parseCIDR("192.168.133.192/26")!, nextHop: W2, encap: ENCAP_IPIP });
  const dp = new Dataplane(fp, { tunName: "weft-unused", underlayMTU: 1500, bindAddress: "127.0.0.1", log: pino({ level: "silent" }) });
  const inner = dp as unknown as { learnFromErrors: (e: SocketError[]) => void; expirePathMtus: (now: number) => void };
  return { dp, fp, learn: (e) => inner.learnFromErrors(e), expire: (now) => inner.expirePathMtus(now) };
}

describe("path MTUs reported by the network", () => {
  it("a smaller MTU toward a node is kept (at least the kernel's floor of 552); one at or above the uplink's, or an error without one, is not", () => {
    const { dp, learn } = dataplane();
    learn([[W2, 1400, EMSGSIZE], [W3, 300, EMSGSIZE], [parseIPv4("10.30.0.10")!, 1500, EMSGSIZE], [parseIPv4("10.30.0.13")!, 0, 113]]);
    expect(dp.pathMtus()).toEqual({ "10.30.0.12": 1400, "10.30.1.13": 552 });
    dp.stop();
  });

  it("is forgotten 10 minutes after it was last reported, and learned again if reported again", () => {
    const { dp, learn, expire } = dataplane();
    const t0 = performance.now();
    learn([[W2, 1400, EMSGSIZE]]);
    expire(t0 + Dataplane.PATH_MTU_MS - 1000);
    expect(dp.pathMtus()).toEqual({ "10.30.0.12": 1400 });
    expire(t0 + Dataplane.PATH_MTU_MS + 1000);
    expect(dp.pathMtus()).toEqual({});
    learn([[W2, 1300, EMSGSIZE]]);
    expect(dp.pathMtus()).toEqual({ "10.30.0.12": 1300 });
    dp.stop();
  });

  describe("when the wall clock is stepped (NTP at boot, a VM resumed)", () => {
    afterEach(() => vi.useRealTimers());
    const DAY = 86_400_000;

    it("stepped back a day, a smaller MTU is still forgotten 10 minutes after it was reported", () => {
      vi.useFakeTimers({ toFake: ["Date", "performance", "setInterval", "clearInterval"] });
      const { dp, learn } = dataplane();
      learn([[W2, 1400, EMSGSIZE]]);
      vi.setSystemTime(Date.now() - DAY);
      vi.advanceTimersByTime(Dataplane.PATH_MTU_MS + 30_000);
      expect(dp.pathMtus()).toEqual({});
      dp.stop();
    });

    it("stepped forward a day, a smaller MTU reported a minute ago is kept", () => {
      vi.useFakeTimers({ toFake: ["Date", "performance", "setInterval", "clearInterval"] });
      const { dp, learn } = dataplane();
      learn([[W2, 1400, EMSGSIZE]]);
      vi.setSystemTime(Date.now() + DAY);
      vi.advanceTimersByTime(60_000);
      expect(dp.pathMtus()).toEqual({ "10.30.0.12": 1400 });
      dp.stop();
    });
  });
});
