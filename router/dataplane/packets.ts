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
