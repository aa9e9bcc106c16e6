// TUN offloads in the fast path: TSO super-packets split into checked segments on
// the way out, consecutive TCP segments coalesced into one super-packet on the way in.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { FastPath, ENCAP_IPIP, ENCAP_VXLAN, CH_IPIP, CH_TUN, CH_VXLAN, OFFLOAD_GRO, OFFLOAD_VNET, type Encap } from "./fastpath.js";
import { parseCIDR, parseIPv4, parseMAC } from "./addr.js";
import { asTsoSuperPacket, buildIPv4, buildTcp, buildVxlan, ipv4Checksum, pseudoHeaderSum, tcpChecksumOk } from "./packets.js";
import { vtepMAC } from "./vtep.js";

const BIG = 65536 + 256;
const W1 = "10.30.0.11";
const W2 = "10.30.0.12";
const POD1 = "192.168.226.65";
const POD2 = "192.168.133.194";

function node(name: string, addr: string, peer: string, peerName: string, peerBlock: string, encap: Encap, offloads = OFFLOAD_VNET | OFFLOAD_GRO): FastPath {
  const fp = new FastPath();
  fp.configure({ localAddr: parseIPv4(addr)!, underlayMTU: 1500, vtepMAC: vtepMAC(name) });
  fp.x.setOffloads(offloads);
  fp.setNodes([parseIPv4(peer)!]);
  fp.upsert({ prefix: parseCIDR(peerBlock)!, nextHop: parseIPv4(peer)!, encap, vtepMAC: vtepMAC(peerName) });
  return fp;
}

function load(fp: FastPath, packets: Array<{ bytes: Uint8Array; from?: number; gso?: number }>, slot = BIG): void {
  const mem = new Uint8Array(fp.memory);
  packets.forEach((p, i) => {
    const off = fp.slots + i * slot + fp.headroom;
    mem.set(p.bytes, off);
    fp.input(i, { off, len: p.bytes.length, from: p.from, gso: p.gso });
  });
}

function outputs(fp: FastPath, n: number) {
  return Array.from({ length: n }, (_, i) => fp.output(i));
}

const tcpFlow = (payload: Uint8Array, flags = 0x18, seq = 1000) =>
  buildTcp({ src: POD1, dst: POD2, sport: 40000, dport: 5201, seq, ack: 77, flags, payload, options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]) });

describe("TSO: a super-packet from the TUN leaves as checked segments", () => {
  it("splits 10,000 bytes at MSS 1000 into 10 IPIP packets with their own seq, id, flags and checksums", () => {
    const w1 = node("worker-1", W1, W2, "worker-2", "192.168.133.192/26", ENCAP_IPIP);
    const payload = randomBytes(10_000);
    load(w1, [{ bytes: asTsoSuperPacket(tcpFlow(payload, 0x18 | 0x80), 1000) }]);
    const out = outputs(w1, w1.x.encapBatch(1));
    expect(out).toHaveLength(10);
    let joined = Buffer.alloc(0);
    out.forEach((o, k) => {
      expect(o.channel).toBe(CH_IPIP);
      const inner = o.bytes.subarray(20);
      expect(ipv4Checksum(o.bytes, 0, 20)).toBe(0);
      expect(ipv4Checksum(inner, 0, 20)).toBe(0);
      expect(tcpChecksumOk(inner)).toBe(true);
      expect(new DataView(inner.buffer, inner.byteOffset).getUint32(24)).toBe(1000 + k * 1000);
      const flags = inner[33];
      expect(!!(flags & 0x08)).toBe(k === 9); // PSH only on the last
      expect(!!(flags & 0x80)).toBe(k === 0); // CWR only on the first
      joined = Buffer.concat([joined, inner.subarray(20 + 32)]);
    });
    expect(joined.equals(payload)).toBe(true);
    expect(w1.counters().tso_segments).toBe(10);
  });

  it("finishes a partial checksum on a packet that needs no segmentation", () => {
    const w1 = node("worker-1", W1, W2, "worker-2", "192.168.133.192/26", ENCAP_VXLAN);
    load(w1, [{ bytes: asTsoSuperPacket(tcpFlow(randomBytes(300)), 1000) }]);
    const [o] = outputs(w1, w1.x.encapBatch(1));
    expect(o.channel).toBe(CH_VXLAN);
    expect(tcpChecksumOk(o.bytes.subarray(22))).toBe(true);
  });
});

describe("GRO: consecutive segments reach the TUN as one super-packet", () => {
  function roundTrip(payload: Uint8Array, mss: number, flags = 0x18, mangle?: (outs: Array<{ bytes: Uint8Array }>) => void) {
    const w1 = node("worker-1", W1, W2, "worker-2", "192.168.133.192/26", ENCAP_IPIP);
    const w2 = node("worker-2", W2, W1, "worker-1", "192.168.226.64/26", ENCAP_IPIP);
    load(w1, [{ bytes: asTsoSuperPacket(tcpFlow(payload, flags), mss) }]);
    const wire = outputs(w1, w1.x.encapBatch(1));
    mangle?.(wire);
    load(w2, wire.map((o) => ({ bytes: o.bytes })), 2048);
    return { w2, out: outputs(w2, w2.x.decapIpipBatch(wire.length, 2048 - w2.headroom)) };
  }

  /** The TCP payloads written to the TUN, in order. */
  const payloadOf = (outs: Array<{ bytes: Uint8Array }>) => Buffer.concat(outs.map((o) => Buffer.from(o.bytes.subarray(10 + 20 + 32))));

  it("merges 20 segments into one TCPv4 GSO packet with NEEDS_CSUM, bytes intact", () => {
    const payload = randomBytes(20 * 1400);
    const { w2, out } = roundTrip(payload, 1400);
    expect(out).toHaveLength(1);
    const b = out[0].bytes;
    const dv = new DataView(b.buffer, b.byteOffset);
    expect(b[0]).toBe(1); // NEEDS_CSUM
    expect(b[1]).toBe(1); // GSO_TCPV4
    expect(dv.getUint16(2, true)).toBe(52); // header bytes
    expect(dv.getUint16(4, true)).toBe(1400); // gso size
    expect(dv.getUint16(6, true)).toBe(20); // csum start
    expect(dv.getUint16(8, true)).toBe(16);
    expect(new DataView(b.buffer, b.byteOffset + 10).getUint16(2)).toBe(20 + 32 + payload.length);
    expect(ipv4Checksum(b, 10, 20)).toBe(0);
    expect(payloadOf(out).equals(payload)).toBe(true);
    expect(w2.counters().gro_segments_merged).toBe(20);
  });

  it("keeps a FIN segment apart and delivers every byte", () => {
    const payload = randomBytes(5 * 1000);
    const { out } = roundTrip(payload, 1000, 0x19);
    expect(out.length).toBe(2);
    expect(payloadOf(out).equals(payload)).toBe(true);
  });

  it("does not merge across a gap in sequence numbers or a segment with a bad checksum", () => {
    const payload = randomBytes(6 * 1000);
    const { out } = roundTrip(payload, 1000, 0x18, (wire) => {
      wire.splice(2, 1); // lose segment 2
      wire[3].bytes[20 + 52] ^= 0xff; // corrupt the payload of (original) segment 4
    });
    // segments 0-1 merged; 3 alone (corrupt, left for the kernel to drop); 4 alone (the
    // one before it was not merged); 5 merged with 4.
    const total = out.reduce((n, o) => n + o.bytes.length - 10 - 52, 0);
    expect(total).toBe(5 * 1000);
    expect(out.length).toBeGreaterThanOrEqual(3);
    const plain = out.filter((o) => o.bytes[1] === 0);
    expect(plain.some((o) => !tcpChecksumOk(o.bytes.subarray(10)))).toBe(true);
  });

  it("splits a UDP-GRO buffer of VXLAN datagrams and coalesces their inner segments", () => {
    const w2 = node("worker-2", W2, W1, "worker-1", "192.168.226.64/26", ENCAP_VXLAN);
    const payload = randomBytes(8 * 1000);
    const frames = Array.from({ length: 8 }, (_, k) =>
      buildVxlan(4096, parseMAC(vtepMAC("worker-2"))!, parseMAC(vtepMAC("worker-1"))!, tcpFlow(payload.subarray(k * 1000, (k + 1) * 1000), 0x10, 1000 + k * 1000)),
    );
    const gro = Buffer.concat(frames);
    load(w2, [{ bytes: gro, from: parseIPv4(W1)!, gso: frames[0].length }]);
    const out = outputs(w2, w2.x.decapVxlanBatch(1, BIG - w2.headroom));
    expect(out).toHaveLength(1);
    expect(out[0].channel).toBe(CH_TUN);
    expect(payloadOf(out).equals(payload)).toBe(true);
  });
});

describe("IPIP packets this host's NIC merged (GRO) before the raw socket saw them", () => {
  /** An IPIP packet as the kernel hands it over after GRO: lengths and IP checksums fixed up, the TCP checksum left partial (the pseudo-header sum). */
  function nicMerged(inner: Uint8Array, partial = true): Uint8Array {
    const p = Uint8Array.from(inner);
    if (partial) {
      const ps = pseudoHeaderSum(p, 6, p.length - 20);
      p[36] = ps >> 8;
      p[37] = ps & 255;
    }
    return buildIPv4({ src: W1, dst: W2, protocol: 4, df: true, payload: p });
  }
  const decap = (fp: FastPath, bytes: Uint8Array) => {
    load(fp, [{ bytes }]);
    return outputs(fp, fp.x.decapIpipBatch(1, BIG - fp.headroom));
  };
  const w2 = (offloads?: number) => node("worker-2", W2, W1, "worker-1", "192.168.226.64/26", ENCAP_IPIP, offloads);
  const payloadOf = (outs: Array<{ bytes: Uint8Array }>, vnetLen: number) => Buffer.concat(outs.map((o) => Buffer.from(o.bytes.subarray(vnetLen + 20 + 32))));

  it("20 merged segments reach the TUN as one TCPv4 GSO packet at the tunnel's MSS (1480 - 52 = 1428), so the pods' side takes it; bytes intact", () => {
    const fp = w2();
    const payload = randomBytes(20 * 1428);
    const out = decap(fp, nicMerged(tcpFlow(payload, 0x10)));
    expect(out).toHaveLength(1);
    const b = out[0].bytes;
    const dv = new DataView(b.buffer, b.byteOffset);
    expect([b[0], b[1]]).toEqual([1, 1]); // NEEDS_CSUM, GSO_TCPV4
    expect(dv.getUint16(2, true)).toBe(52);
    expect(dv.getUint16(4, true)).toBe(1428);
    expect(dv.getUint16(6, true)).toBe(20);
    expect(dv.getUint16(8, true)).toBe(16);
    expect(payloadOf(out, 10).equals(payload)).toBe(true);
    expect(fp.counters()).toMatchObject({ super_packets_received: 1, tun_tx: 1, drop_too_big: 0, drop_truncated: 0 });
  });

  it("a whole packet longer than the tunnel (a sender with a larger MTU) goes the same way when its checksum holds, and is dropped when it does not", () => {
    const fp = w2();
    const good = nicMerged(tcpFlow(randomBytes(4000), 0x10), false);
    expect(decap(fp, good)[0].bytes[1]).toBe(1);
    const bad = Uint8Array.from(good);
    bad[20 + 52 + 100] ^= 0xff;
    expect(decap(fp, bad)).toHaveLength(0);
    expect(fp.counters()).toMatchObject({ super_packets_received: 1, drop_bad_checksum: 1 });
  });

  it("without virtio headers on the TUN (offloads off) it is split here into 1428-byte segments with whole checksums", () => {
    const fp = w2(0);
    const payload = randomBytes(5 * 1428 + 100);
    const out = decap(fp, nicMerged(tcpFlow(payload, 0x18)));
    expect(out.map((o) => o.bytes.length)).toEqual([1480, 1480, 1480, 1480, 1480, 152]);
    for (const o of out) expect(tcpChecksumOk(o.bytes)).toBe(true);
    expect(out.map((o) => !!(o.bytes[33] & 0x08))).toEqual([false, false, false, false, false, true]); // PSH on the last
    expect(payloadOf(out, 0).equals(payload)).toBe(true);
  });

  it("anything but TCP longer than the tunnel is dropped as too big", () => {
    const fp = w2();
    const udp = buildIPv4({ src: POD1, dst: POD2, protocol: 17, df: true, payload: randomBytes(3000) });
    expect(decap(fp, buildIPv4({ src: W1, dst: W2, protocol: 4, payload: udp }))).toHaveLength(0);
    expect(fp.counters().drop_too_big).toBe(1);
  });
});

describe("fuzz: random virtio headers and packets never crash the offload paths", () => {
  const runs = Number(process.env.WEFT_FUZZ_RUNS ?? 100_000) / 4;
  it(`encapsulation with virtio headers: ${runs} cases`, () => {
    const w1 = node("worker-1", W1, W2, "worker-2", "192.168.133.192/26", ENCAP_VXLAN);
    fc.assert(
      fc.property(
        fc.record({ needsCsum: fc.boolean(), gsoType: fc.constantFrom(0, 1, 3, 4, 0x81, 7), gsoSize: fc.integer({ min: 0, max: 3000 }), csumStart: fc.integer({ min: 0, max: 300 }), csumOffset: fc.integer({ min: 0, max: 40 }) }),
        fc.integer({ min: 0, max: 6000 }),
        fc.uint8Array({ maxLength: 64 }),
        (v, size, junk) => {
          const base = Buffer.from(tcpFlow(randomBytes(size)));
          base.set(junk.subarray(0, Math.min(junk.length, base.length)), junk.length % 40);
          const bytes = new Uint8Array(10 + base.length);
          bytes.set(base, 10);
          const dv = new DataView(bytes.buffer);
          bytes[0] = v.needsCsum ? 1 : 0;
          bytes[1] = v.gsoType;
          dv.setUint16(4, v.gsoSize, true);
          dv.setUint16(6, v.csumStart, true);
          dv.setUint16(8, v.csumOffset, true);
          load(w1, [{ bytes }]);
          const out = outputs(w1, w1.x.encapBatch(1));
          for (const o of out) {
            expect([CH_TUN, CH_VXLAN, CH_IPIP]).toContain(o.channel);
            expect(o.bytes.length).toBeLessThanOrEqual(65535 + 64);
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it(`IPIP decapsulation of inner packets longer than the tunnel, mangled: ${runs} cases`, () => {
    const w2 = node("worker-2", W2, W1, "worker-1", "192.168.226.64/26", ENCAP_IPIP);
    fc.assert(
      fc.property(fc.integer({ min: 1481, max: 30000 }), fc.uint8Array({ maxLength: 64 }), fc.boolean(), (size, junk, partial) => {
        const inner = Buffer.from(tcpFlow(randomBytes(size - 52)));
        if (partial) inner.writeUInt16BE(pseudoHeaderSum(inner, 6, inner.length - 20), 36);
        inner.set(junk.subarray(0, Math.min(junk.length, 52)), junk.length % 20);
        const bytes = buildIPv4({ src: W1, dst: W2, protocol: 4, payload: inner });
        load(w2, [{ bytes }]);
        for (const o of outputs(w2, w2.x.decapIpipBatch(1, BIG - w2.headroom))) {
          expect(o.channel).toBe(CH_TUN);
          expect(o.bytes.length).toBeLessThanOrEqual(65535 + 10);
        }
      }),
      { numRuns: runs },
    );
  });
});
