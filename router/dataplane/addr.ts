// IPv4 addresses and prefixes as numbers (host order), the way the fast path sees them.

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIPv4(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
}

export interface Prefix {
  addr: number;
  len: number;
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Parses "a.b.c.d/len"; strict requires no host bits. */
export function parseCIDR(text: string, strict = true): Prefix | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const addr = parseIPv4(m[1]);
  const len = Number(m[2]);
  if (addr === undefined || len > 32) return undefined;
  if (strict && (addr & ~maskOf(len)) >>> 0 !== 0) return undefined;
  return { addr, len };
}

export function formatCIDR(p: Prefix): string {
  return `${formatIPv4(p.addr)}/${p.len}`;
}

export function contains(p: Prefix, addr: number): boolean {
  return ((addr & maskOf(p.len)) >>> 0) === ((p.addr & maskOf(p.len)) >>> 0);
}

/** Whether prefix inner lies inside outer (as long or longer, its address in it): BIRD's net ~ outer. */
export function within(inner: Prefix, outer: Prefix): boolean {
  return inner.len >= outer.len && contains(outer, inner.addr);
}

export function parseMAC(text: string): number[] | undefined {
  const m = /^([0-9a-f]{2})(?::([0-9a-f]{2})){5}$/i.exec(text);
  if (!m) return undefined;
  return text.split(":").map((h) => Number.parseInt(h, 16));
}

export function formatMAC(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}
