// Routes learned from peers (Adj-RIB-In per peer) and the best path per prefix.
import type { Attributes, Prefix } from "./wire.js";

export interface Path {
  prefix: string; // CIDR
  peer: string; // session key
  peerAddress: string;
  peerRouterId: string;
  ibgp: boolean;
  attrs: Attributes;
  stale?: boolean;
  /** Rejected by the session's import filter: kept (a filter change may let it in), never used. */
  filtered?: boolean;
  /** The attributes as received, when the import filter's operations changed them (attrs is the result). */
  receivedAttrs?: Attributes;
}

export const cidrOf = (p: Prefix) => `${p.addr >>> 24}.${(p.addr >>> 16) & 255}.${(p.addr >>> 8) & 255}.${p.addr & 255}/${p.len}`;
export function prefixOf(cidr: string): Prefix {
  const [a, l] = cidr.split("/");
  const o = a.split(".").map(Number);
  return { addr: ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0, len: Number(l) };
}

/** AS numbers put in front of a path: into its first AS_SEQUENCE when there is room (255 per segment), else as a segment of their own. */
export function prependPath(path: Attributes["asPath"], asns: number[]): NonNullable<Attributes["asPath"]> {
  const [first, ...rest] = path ?? [];
  if (first?.type === 2 && first.asns.length + asns.length <= 255) return [{ type: 2, asns: [...asns, ...first.asns] }, ...rest];
  return [{ type: 2, asns }, ...(path ?? [])];
}

const asPathLen = (a: Attributes) => (a.asPath ?? []).reduce((n, s) => n + (s.type === 1 ? 1 : s.asns.length), 0);
const ipNum = (s: string) => s.split(".").reduce((n, o) => n * 256 + Number(o), 0);

/** RFC 4271 9.1.2.2 decision process, simplified: fewer steps, same order. */
export function better(a: Path, b: Path): boolean {
  const lp = (p: Path) => p.attrs.localPref ?? 100;
  if (lp(a) !== lp(b)) return lp(a) > lp(b);
  if (asPathLen(a.attrs) !== asPathLen(b.attrs)) return asPathLen(a.attrs) < asPathLen(b.attrs);
  if ((a.attrs.origin ?? 2) !== (b.attrs.origin ?? 2)) return (a.attrs.origin ?? 2) < (b.attrs.origin ?? 2);
  if ((a.attrs.med ?? 0) !== (b.attrs.med ?? 0)) return (a.attrs.med ?? 0) < (b.attrs.med ?? 0);
  if (a.ibgp !== b.ibgp) return !a.ibgp;
  const ida = ipNum(a.attrs.originatorId ?? a.peerRouterId);
  const idb = ipNum(b.attrs.originatorId ?? b.peerRouterId);
  if (ida !== idb) return ida < idb;
  return ipNum(a.peerAddress) < ipNum(b.peerAddress);
}

export class Rib {
  private readonly adjIn = new Map<string, Map<string, Path>>();
  private readonly best = new Map<string, Path>();

  /** Applies a change; returns the prefixes whose best path changed. */
  update(peer: string, withdraw: string[], announce: Path[]): string[] {
    let table = this.adjIn.get(peer);
    if (!table) this.adjIn.set(peer, (table = new Map()));
    const touched = new Set<string>();
    for (const c of withdraw) if (table.delete(c)) touched.add(c);
    for (const p of announce) {
      table.set(p.prefix, p);
      touched.add(p.prefix);
    }
    return this.reselect(touched);
  }

  /** Marks every route of a peer stale (graceful restart: kept until it returns). */
  markStale(peer: string): void {
    for (const p of this.adjIn.get(peer)?.values() ?? []) p.stale = true;
  }

  /** Drops a peer's stale routes (End-of-RIB after its restart, or restart time over). */
  sweepStale(peer: string): string[] {
    const table = this.adjIn.get(peer);
    if (!table) return [];
    const gone = [...table.values()].filter((p) => p.stale).map((p) => p.prefix);
    return this.update(peer, gone, []);
  }

  /** Runs a peer's routes through its import filter again (the filter changed): apply sets each path's filtered, attrs and receivedAttrs; returns the prefixes whose best path changed. */
  refilter(peer: string, apply: (p: Path) => void): string[] {
    const touched = new Set<string>();
    for (const p of this.adjIn.get(peer)?.values() ?? []) {
      const before = JSON.stringify([p.filtered ?? false, p.attrs]);
      apply(p);
      if (JSON.stringify([p.filtered ?? false, p.attrs]) !== before) touched.add(p.prefix);
    }
    // A path whose attributes changed is another candidate: reselect compares by identity.
    for (const c of touched) this.best.delete(c);
    return this.reselect(touched);
  }

  dropPeer(peer: string): string[] {
    const table = this.adjIn.get(peer);
    if (!table) return [];
    const gone = [...table.keys()];
    this.adjIn.delete(peer);
    return this.reselect(new Set(gone));
  }

  private reselect(prefixes: Set<string>): string[] {
    const changed: string[] = [];
    for (const c of prefixes) {
      let b: Path | undefined;
      for (const t of this.adjIn.values()) {
        const p = t.get(c);
        if (p && !p.filtered && (!b || better(p, b))) b = p;
      }
      const old = this.best.get(c);
      if (b === old) continue;
      if (b) this.best.set(c, b);
      else this.best.delete(c);
      changed.push(c);
    }
    return changed;
  }

  bestPaths(): Path[] {
    return [...this.best.values()];
  }

  bestPath(prefix: string): Path | undefined {
    return this.best.get(prefix);
  }

  bestPrefixes(): IterableIterator<string> {
    return this.best.keys();
  }

  /** Received routes an import filter rejected (kept, not used). */
  filteredPaths(): Path[] {
    return [...this.adjIn.values()].flatMap((t) => [...t.values()].filter((p) => p.filtered));
  }

  received(peer: string): number {
    return this.adjIn.get(peer)?.size ?? 0;
  }

  /** How many of a peer's routes its import filter rejected. */
  filtered(peer: string): number {
    let n = 0;
    for (const p of this.adjIn.get(peer)?.values() ?? []) if (p.filtered) n++;
    return n;
  }
}
