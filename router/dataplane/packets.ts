// Builds and reads test packets in plain byte arrays (tests, lab tools, benchmarks).
import { parseIPv4 } from "./addr.js";

export function ipv4Checksum(b: Uint8Array, off = 0, len = 20): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export interface IPv4Fields {
  src: string;
  dst: string;
  protocol: number;
  payload: Uint8Array;
  ttl?: number;
  df?: boolean;
  id?: number;
  tos?: number;
}

export function buildIPv4(f: IPv4Fields): Uint8Array {
  const b = new Uint8Array(20 + f.payload.length);
  const total = b.length;
  b[0] = 0x45;
  b[1] = f.tos ?? 0;
  b[2] = total >> 8;
  b[3] = total & 255;
  b[4] = (f.id ?? 0) >> 8;
  b[5] = (f.id ?? 0) & 255;
  b[6] = f.df ? 0x40 : 0;
  b[8] = f.ttl ?? 64;
  b[9] = f.protocol;
  const s = parseIPv4(f.src)!;
  const d = parseIPv4(f.dst)!;
  new DataView(b.buffer).setUint32(12, s);
  new DataView(b.buffer).setUint32(16, d);
  const c = ipv4Checksum(b);
  b[10] = c >> 8;
  b[11] = c & 255;
  b.set(f.payload, 20);
  return b;
}

/** An ICMP echo request of size bytes of payload. */
export function buildEcho(src: string, dst: string, size = 8, df = false): Uint8Array {
  const icmp = new Uint8Array(8 + size);
  icmp[0] = 8;
  icmp[4] = 0x12;
  icmp[5] = 0x34;
  for (let i = 0; i < size; i++) icmp[8 + i] = i & 255;
  const c = ipv4Checksum(icmp, 0, icmp.length);
  icmp[2] = c >> 8;
  icmp[3] = c & 255;
  return buildIPv4({ src, dst, protocol: 1, payload: icmp, df });
}

export function buildVxlan(vni: number, dstMAC: number[], srcMAC: number[], inner: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + 14 + inner.length);
  b[0] = 0x08;
  b[4] = (vni >> 16) & 255;
  b[5] = (vni >> 8) & 255;
  b[6] = vni & 255;
  b.set(dstMAC, 8);
  b.set(srcMAC, 14);
  b[20] = 0x08;
  b[21] = 0x00;
  b.set(inner, 22);
  return b;
}

function sumWords(b: Uint8Array, off: number, len: number, acc = 0): number {
  let s = acc;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Sum of the IPv4 pseudo header (for TCP/UDP checksums) of the packet in b. */
export function pseudoHeaderSum(b: Uint8Array, proto: number, l4len: number): number {
  return sumWords(b, 12, 8, proto + l4len);
}

export interface TcpFields {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags?: number; // default ACK
  window?: number;
  payload: Uint8Array;
  options?: Uint8Array; // multiple of 4 bytes
  id?: number;
}

/** An IPv4 TCP segment with valid checksums. */
export function buildTcp(f: TcpFields): Uint8Array {
  const opts = f.options ?? new Uint8Array(0);
  const thl = 20 + opts.length;
  const t = new Uint8Array(thl + f.payload.length);
  const dv = new DataView(t.buffer);
  dv.setUint16(0, f.sport);
  dv.setUint16(2, f.dport);
  dv.setUint32(4, f.seq >>> 0);
  dv.setUint32(8, (f.ack ?? 1) >>> 0);
  t[12] = (thl / 4) << 4;
  t[13] = f.flags ?? 0x10;
  dv.setUint16(14, f.window ?? 502);
  t.set(opts, 20);
  t.set(f.payload, thl);
  const ip = buildIPv4({ src: f.src, dst: f.dst, protocol: 6, payload: t, df: true, id: f.id });
  const c = ~sumWords(ip, 20, t.length, pseudoHeaderSum(ip, 6, t.length)) & 0xffff;
  ip[36] = c >> 8;
  ip[37] = c & 255;
  return ip;
}

/** True when the TCP checksum of the IPv4 packet (no IP options) verifies. */
export function tcpChecksumOk(ip: Uint8Array): boolean {
  const l4 = ip.length - 20;
  return sumWords(ip, 20, l4, pseudoHeaderSum(ip, 6, l4)) === 0xffff;
}

export interface VnetFields {
  needsCsum?: boolean;
  gsoType?: number; // 1 = TCPv4
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}

/** A virtio_net_hdr (little-endian) followed by the packet. */
export function withVnet(v: VnetFields, packet: Uint8Array): Uint8Array {
  const b = new Uint8Array(10 + packet.length);
  const dv = new DataView(b.buffer);
  b[0] = v.needsCsum ? 1 : 0;
  b[1] = v.gsoType ?? 0;
  dv.setUint16(2, v.hdrLen ?? 0, true);
  dv.setUint16(4, v.gsoSize ?? 0, true);
  dv.setUint16(6, v.csumStart ?? 0, true);
  dv.setUint16(8, v.csumOffset ?? 0, true);
  b.set(packet, 10);
  return b;
}

/** Turns a TCP packet into what a TSO-capable TUN hands over: the checksum field holds
 * the folded pseudo-header sum (checksum partial), with the virtio header in front. */
export function asTsoSuperPacket(ip: Uint8Array, mss: number): Uint8Array {
  const p = Uint8Array.from(ip);
  const l4 = p.length - 20;
  const ps = pseudoHeaderSum(p, 6, l4);
  p[36] = ps >> 8;
  p[37] = ps & 255;
  const thl = (p[32] >> 4) * 4;
  return withVnet({ needsCsum: true, gsoType: l4 - thl > mss ? 1 : 0, hdrLen: 20 + thl, gsoSize: mss, csumStart: 20, csumOffset: 16 }, p);
}
