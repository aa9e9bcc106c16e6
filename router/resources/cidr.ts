// IPv4 and IPv6 prefixes as bigints: enough for pool validation (masking, overlap, size).
import net from "node:net";

export interface AnyCIDR {
  family: 4 | 6;
  addr: bigint;
  len: number;
  text: string;
}

function v6ToBig(a: string): bigint {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined ? (tail ? tail.split(":") : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g || "0", 16)), 0n);
}

export function parseAnyCIDR(text: string): AnyCIDR | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const family = net.isIP(m[1]);
  const len = Number(m[2]);
  if (family === 4 && len <= 32) {
    const addr = m[1].split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
    return { family: 4, addr, len, text };
  }
  if (family === 6 && len <= 128 && !m[1].includes(".")) return { family: 6, addr: v6ToBig(m[1]), len, text };
  return undefined;
}

const bits = (c: AnyCIDR) => (c.family === 4 ? 32 : 128);

export function isStrictlyMasked(c: AnyCIDR): boolean {
  const host = (1n << BigInt(bits(c) - c.len)) - 1n;
  return (c.addr & host) === 0n;
}

export function overlaps(a: AnyCIDR, b: AnyCIDR): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const shift = BigInt(bits(a) - len);
  return a.addr >> shift === b.addr >> shift;
}

/** Ranges no pod address may come from (link local first: Calico's own message). */
export const RESERVED_RANGES: Array<{ what: string; cidr: string; net: AnyCIDR }> = [
  ["IPv4 link local", "169.254.0.0/16"],
  ["IPv4 loopback", "127.0.0.0/8"],
  ["IPv4 multicast", "224.0.0.0/4"],
  ["IPv4 reserved", "240.0.0.0/4"],
  ["IPv4 \"this network\"", "0.0.0.0/8"],
  ["IPv6 link local", "fe80::/10"],
  ["IPv6 loopback", "::1/128"],
  ["IPv6 multicast", "ff00::/8"],
].map(([what, cidr]) => ({ what, cidr, net: parseAnyCIDR(cidr)! }));
