import { describe, expect, it, beforeEach } from "vitest";
import fc from "fast-check";
import { FastPath, MAX_NODES, ENCAP_IPIP, ENCAP_VXLAN, CH_IPIP, CH_TUN, CH_VXLAN, OFFLOAD_VNET } from "./fastpath.js";
import { parseCIDR, parseIPv4, parseMAC, formatIPv4 } from "./addr.js";
import { asTsoSuperPacket, buildEcho, buildIPv4, buildTcp, buildVxlan, ipv4Checksum } from "./packets.js";
import { vtepMAC } from "./vtep.js";

const SLOT = 2048;

/** Loads packets into slots as the native side would, runs one batch, returns the outputs. */
class Harness {
  constructor(readonly fp: FastPath) {}
  load(packets: Array<{ bytes: Uint8Array; from?: number; len?: number; gso?: number }>, slot = SLOT): void {
    const mem = new Uint8Array(this.fp.memory);
    packets.forEach((p, i) => {
      const off = this.fp.slots + i * slot + this.fp.headroom;
      mem.set(p.bytes.subarray(0, slot - this.fp.headroom), off);
      this.fp.input(i, { off, len: p.len ?? p.bytes.length, from: p.from, port: 4789, gso: p.gso });
    });
  }
  out(n: number) {
    return Array.from({ length: n }, (_, i) => this.fp.output(i));
  }
  encap(packets: Uint8Array[], slot = SLOT) {
    this.load(packets.map((bytes) => ({ bytes })), slot);
    return this.out(this.fp.x.encapBatch(packets.length));
  }
  decapIpip(packets: Uint8Array[]) {
    this.load(packets.map((bytes) => ({ bytes })));
    return this.out(this.fp.x.decapIpipBatch(packets.length, SLOT - this.fp.headroom));
  }
  decapVxlan(packets: Array<{ bytes: Uint8Array; from: number; gso?: number }>, slot = SLOT) {
    this.load(packets, slot);
    return this.out(this.fp.x.decapVxlanBatch(packets.length, slot - this.fp.headroom));
  }
}

const W1 = "10.30.0.11";
const W2 = "10.30.0.12";
const W3 = "10.30.1.13";
const MAC1 = vtepMAC("worker-1");
const MAC3 = vtepMAC("worker-3");

function node1(): Harness {
  const fp = new FastPath();
  fp.configure({ localAddr: parseIPv4(W1)!, underlayMTU: 1500, vtepMAC: MAC1 });
  fp.setNodes([parseIPv4(W2)!, parseIPv4(W3)!]);
  fp.upsert({ prefix: parseCIDR("192.168.133.192/26")!, nextHop: parseIPv4(W2)!, encap: ENCAP_IPIP });
  fp.upsert({ prefix: parseCIDR("192.168.97.192/26")!, nextHop: parseIPv4(W3)!, encap: ENCAP_VXLAN, vtepMAC: MAC3 });
  return new Harness(fp);
}

describe("VTEP MAC", () => {
  it("is 0x66 followed by the first five bytes of sha1(node name), as Calico derives it", () => {
    // sha1("worker-1") begins 93 7f 54 d5 53.
    expect(vtepMAC("worker-1")).toBe("66:93:7f:54:d5:53");
  });
});

describe("encapsulation of pod traffic read from the TUN", () => {
  let h: Harness;
  beforeEach(() => {
    h = node1();
  });

  it("wraps a packet for worker-2 in IPIP: outer host addresses, protocol 4, valid checksum", () => {
    const inner = buildEcho("192.168.226.65", "192.168.133.194", 56);
    const [o] = h.encap([inner]);
    expect(o.channel).toBe(CH_IPIP);
    expect(formatIPv4(o.addr)).toBe(W2);
    const b = o.bytes;
    expect(b[0]).toBe(0x45);
    expect(b[9]).toBe(4);
    expect(formatIPv4(new DataView(b.buffer).getUint32(12))).toBe(W1);
    expect(formatIPv4(new DataView(b.buffer).getUint32(16))).toBe(W2);
    expect((b[2] << 8) | b[3]).toBe(inner.length + 20);
    expect(ipv4Checksum(b, 0, 20)).toBe(0);
    expect(Buffer.from(b.subarray(20)).equals(Buffer.from(inner))).toBe(true);
  });

  it("wraps a packet for worker-3 in VXLAN: VNI 4096, inner MACs as derived", () => {
    const inner = buildEcho("192.168.226.65", "192.168.97.193", 56);
    const [o] = h.encap([inner]);
    expect(o.channel).toBe(CH_VXLAN);
    expect(formatIPv4(o.addr)).toBe(W3);
    expect(o.port).toBe(4789);
    const b = o.bytes;
    expect(b[0]).toBe(0x08);
    expect((b[4] << 16) | (b[5] << 8) | b[6]).toBe(4096);
    expect(Array.from(b.subarray(8, 14))).toEqual(parseMAC(MAC3));
    expect(Array.from(b.subarray(14, 20))).toEqual(parseMAC(MAC1));
    expect((b[20] << 8) | b[21]).toBe(0x0800);
    expect(Buffer.from(b.subarray(22)).equals(Buffer.from(inner))).toBe(true);
  });

  it("spreads VXLAN flows over the source-port sockets by flow hash, each flow always on one", () => {
    h.fp.x.setVxlanSockets(4);
    const seg = (sport: number, seq: number) => buildTcp({ src: "192.168.226.65", dst: "192.168.97.193", sport, dport: 5201, seq, payload: new Uint8Array(100) });
    const flows = Array.from({ length: 32 }, (_, i) => 40000 + i);
    const first = h.encap(flows.map((p) => seg(p, 1))).map((o) => o.channel);
    const again = h.encap(flows.map((p) => seg(p, 1001))).map((o) => o.channel);
    expect(again).toEqual(first);
    expect(new Set(first)).toEqual(new Set([CH_VXLAN, CH_VXLAN + 1, CH_VXLAN + 2, CH_VXLAN + 3]));
    for (let k = 0; k < 4; k++) expect(h.fp.tally(CH_VXLAN + k)).toBe(first.filter((c) => c === CH_VXLAN + k).length);
    // IPIP has one socket: its channel does not change.
    expect(h.encap([buildEcho("192.168.226.65", "192.168.133.193", 8)])[0].channel).toBe(CH_IPIP);
  });

  it("answers a packet with no route with ICMP net unreachable back into the TUN", () => {
    const [o] = h.encap([buildEcho("192.168.226.65", "192.168.250.1", 16)]);
    expect(o.channel).toBe(CH_TUN);
    const b = o.bytes;
    expect(b[9]).toBe(1);
    expect(formatIPv4(new DataView(b.buffer).getUint32(12))).toBe(W1);
    expect(formatIPv4(new DataView(b.buffer).getUint32(16))).toBe("192.168.226.65");
    expect(b[20]).toBe(3);
    expect(b[21]).toBe(0);
    expect(ipv4Checksum(b, 0, 20)).toBe(0);
    expect(ipv4Checksum(b, 20, b.length - 20)).toBe(0);
    expect(h.fp.counters().icmp_unreachable_sent).toBe(1);
  });

  it("answers an oversized DF packet with fragmentation needed carrying the tunnel MTU", () => {
    const [ipip, vx] = h.encap([
      buildEcho("192.168.226.65", "192.168.133.194", 1500 - 28, true),
      buildEcho("192.168.226.65", "192.168.97.193", 1480 - 28, true),
    ]);
    for (const [o, mtu] of [[ipip, 1480], [vx, 1450]] as const) {
      expect(o.channel).toBe(CH_TUN);
      expect(o.bytes[20]).toBe(3);
      expect(o.bytes[21]).toBe(4);
      expect((o.bytes[26] << 8) | o.bytes[27]).toBe(mtu);
      expect(ipv4Checksum(o.bytes, 20, o.bytes.length - 20)).toBe(0);
    }
    expect(h.fp.counters().icmp_frag_needed_sent).toBe(2);
  });

  it("with a smaller path MTU toward a node (learned from ICMP), answers with that MTU less the encapsulation, for every route through it, until it is forgotten", () => {
    h.fp.upsert({ prefix: parseCIDR("192.168.140.0/26")!, nextHop: parseIPv4(W2)!, encap: ENCAP_IPIP });
    h.fp.setPathMtu(parseIPv4(W2)!, 1400);
    h.fp.upsert({ prefix: parseCIDR("192.168.141.0/26")!, nextHop: parseIPv4(W2)!, encap: ENCAP_IPIP }); // added after: it takes it too
    const fragNeededMtu = (dst: string, size: number) => {
      const [o] = h.encap([buildEcho("192.168.226.65", dst, size - 28, true)]);
      return o.channel === CH_TUN ? (o.bytes[26] << 8) | o.bytes[27] : 0;
    };
    for (const dst of ["192.168.133.194", "192.168.140.1", "192.168.141.1"]) {
      expect(fragNeededMtu(dst, 1381)).toBe(1380);
      expect(fragNeededMtu(dst, 1380)).toBe(0); // fits: encapsulated
    }
    expect(fragNeededMtu("192.168.97.193", 1450)).toBe(0); // worker-3's path is not worker-2's
    expect(h.fp.pathMtuList()).toEqual([{ nextHop: parseIPv4(W2)!, mtu: 1400 }]);
    h.fp.setPathMtu(parseIPv4(W2)!, 0);
    expect(fragNeededMtu("192.168.133.194", 1480)).toBe(0);
    expect(fragNeededMtu("192.168.133.194", 1481)).toBe(1480);
  });

  it("a TSO super-packet whose segments no longer fit the path MTU is answered with it, not split into packets the path drops", () => {
    h.fp.x.setOffloads(OFFLOAD_VNET);
    h.fp.setPathMtu(parseIPv4(W2)!, 1400);
    const superPacket = asTsoSuperPacket(buildTcp({ src: "192.168.226.65", dst: "192.168.133.194", sport: 40000, dport: 5201, seq: 1, flags: 0x10, payload: new Uint8Array(4 * 1440) }), 1440);
    const out = h.encap([superPacket]);
    expect(out).toHaveLength(1);
    expect(out[0].channel).toBe(CH_TUN);
    expect((out[0].bytes[10 + 26] << 8) | out[0].bytes[10 + 27]).toBe(1380);
  });

  it("drops an oversized packet without DF and counts it", () => {
    expect(h.encap([buildEcho("192.168.226.65", "192.168.133.194", 1490, false)])).toEqual([]);
    expect(h.fp.counters().drop_too_big).toBe(1);
  });

  it("never answers an ICMP error with another one", () => {
    const err = buildIPv4({ src: "192.168.226.65", dst: "192.168.250.1", protocol: 1, payload: new Uint8Array([3, 1, 0, 0, 0, 0, 0, 0]) });
    expect(h.encap([err])).toEqual([]);
    expect(h.fp.counters().drop_no_route).toBe(1);
  });
});

describe("decapsulation accepts only known nodes", () => {
  let h: Harness;
  beforeEach(() => {
    h = node1();
  });
  const inner = buildEcho("192.168.133.194", "192.168.226.65", 32);

  it("delivers the inner packet of IPIP from worker-2 to the TUN", () => {
    const outer = buildIPv4({ src: W2, dst: W1, protocol: 4, payload: inner });
    const [o] = h.decapIpip([outer]);
    expect(o.channel).toBe(CH_TUN);
    expect(Buffer.from(o.bytes).equals(Buffer.from(inner))).toBe(true);
  });

  it("drops IPIP from a host that is not a node, and counts it", () => {
    const outer = buildIPv4({ src: "10.30.0.1", dst: W1, protocol: 4, payload: inner });
    expect(h.decapIpip([outer])).toEqual([]);
    expect(h.fp.counters().drop_unknown_source).toBe(1);
  });

  it("drops IPIP with a bad outer or inner checksum", () => {
    const outer = buildIPv4({ src: W2, dst: W1, protocol: 4, payload: inner });
    outer[10] ^= 0xff;
    const badInner = Uint8Array.from(inner);
    badInner[10] ^= 1;
    const outer2 = buildIPv4({ src: W2, dst: W1, protocol: 4, payload: badInner });
    expect(h.decapIpip([outer, outer2])).toEqual([]);
    expect(h.fp.counters().drop_bad_checksum).toBe(2);
  });

  it("delivers VXLAN from worker-3 with VNI 4096 to our MAC", () => {
    const v = buildVxlan(4096, parseMAC(MAC1)!, parseMAC(MAC3)!, inner);
    const [o] = h.decapVxlan([{ bytes: v, from: parseIPv4(W3)! }]);
    expect(o.channel).toBe(CH_TUN);
    expect(Buffer.from(o.bytes).equals(Buffer.from(inner))).toBe(true);
  });

  it("drops VXLAN from a stranger, with another VNI, or to another MAC, each counted", () => {
    const good = buildVxlan(4096, parseMAC(MAC1)!, parseMAC(MAC3)!, inner);
    const out = h.decapVxlan([
      { bytes: good, from: parseIPv4("10.30.0.1")! },
      { bytes: buildVxlan(4097, parseMAC(MAC1)!, parseMAC(MAC3)!, inner), from: parseIPv4(W3)! },
      { bytes: buildVxlan(4096, parseMAC(MAC3)!, parseMAC(MAC3)!, inner), from: parseIPv4(W3)! },
    ]);
    expect(out).toEqual([]);
    const c = h.fp.counters();
    expect([c.drop_unknown_source, c.drop_wrong_vni, c.drop_wrong_mac]).toEqual([1, 1, 1]);
  });
});

describe("fuzz: random bytes never crash the fast path and never leak a packet", () => {
  const runs = Number(process.env.WEFT_FUZZ_RUNS ?? 100_000);
  const h = node1();
  const slotCap = SLOT - h.fp.headroom;
  const known = new Set([parseIPv4(W2)!, parseIPv4(W3)!]);
  const bytes = fc.uint8Array({ minLength: 0, maxLength: 200 });
  // Random bytes, and random bytes behind a plausible header so the deeper checks run.
  const packet = fc.oneof(
    bytes,
    fc.tuple(bytes, fc.boolean()).map(([b, known]) => {
      const inner = buildEcho("192.168.133.194", "192.168.226.65", 8);
      const payload = new Uint8Array([...inner.subarray(0, Math.min(inner.length, b.length % 40)), ...b]);
      return buildIPv4({ src: known ? W2 : "10.9.9.9", dst: W1, protocol: 4, payload });
    }),
  );
  const validInner = (b: Uint8Array) => b.length >= 20 && b[0] >> 4 === 4 && ipv4Checksum(b, 0, (b[0] & 15) * 4) === 0 && ((b[2] << 8) | b[3]) === b.length;

  it(`decapsulation: ${runs} cases`, () => {
    fc.assert(
      fc.property(packet, fc.integer({ min: 0, max: slotCap + 8 }), fc.boolean(), fc.boolean(), (p, lenJitter, vx, gro) => {
        // With and without the TUN's virtio header and TCP coalescing.
        h.fp.x.setOffloads(gro ? 3 : 0);
        const len = Math.min(p.length, lenJitter);
        const from = vx ? (lenJitter % 2 ? parseIPv4(W3)! : 0x0a09_0909) : 0;
        const out = vx ? h.decapVxlan([{ bytes: p.subarray(0, len), from }]) : h.decapIpip([p.subarray(0, len)]);
        expect(out.length).toBeLessThanOrEqual(1);
        if (out.length === 0) return;
        const o = out[0];
        expect(o.channel).toBe(CH_TUN);
        expect(validInner(gro ? o.bytes.subarray(10) : o.bytes)).toBe(true);
        if (vx) expect(known.has(from)).toBe(true);
        else expect(known.has(new DataView(p.buffer, p.byteOffset).getUint32(12))).toBe(true);
      }),
      { numRuns: runs },
    );
  });

  it(`encapsulation: ${runs} cases`, () => {
    fc.assert(
      fc.property(packet, (p) => {
        const outs = h.encap([p]);
        expect(outs.length).toBeLessThanOrEqual(1);
        if (outs.length === 0) return;
        const o = outs[0];
        // Anything sent anywhere must stay inside its slot's memory.
        const slot = h.fp.slots;
        expect(o.off).toBeGreaterThanOrEqual(slot);
        expect(o.off + o.bytes.length).toBeLessThanOrEqual(slot + SLOT);
        if (o.channel === CH_IPIP || o.channel === CH_TUN) expect(ipv4Checksum(o.bytes, 0, 20)).toBe(0);
      }),
      { numRuns: runs },
    );
  });
});

describe("the node set at cluster scale", () => {
  it("takes 5000 nodes (Kubernetes' largest cluster) and up to its limit, finds each, and says the limit past it (it stopped at 2048: a 2049th node's tunnel traffic was refused)", () => {
    const fp = new FastPath();
    const addr = (i: number) => ((10 << 24) | (1 << 16) | i) >>> 0; // 10.1.0.0 + i
    const five = Array.from({ length: 5000 }, (_, i) => addr(i + 1));
    fp.setNodes(five);
    expect(five.every((a) => fp.x.nodesHas(a))).toBe(true);
    expect(fp.x.nodesHas(addr(5001))).toBeFalsy();
    const all = Array.from({ length: MAX_NODES }, (_, i) => addr(i + 1));
    fp.setNodes(all);
    expect(all.every((a) => fp.x.nodesHas(a))).toBe(true);
    expect(() => fp.setNodes([...all, addr(MAX_NODES + 1)])).toThrow(`weft: more than ${MAX_NODES} nodes for the fast path's node set`);
  });
});
