// Loads the wasm fast path and keeps its route table: the set of prefixes lives
// here (to find the covering prefix on delete), the lookup structure in wasm.
import { readFileSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "../native/index.js";
import { formatCIDR, maskOf, parseMAC, type Prefix } from "./addr.js";
import { COUNTER_NAMES, type Counters } from "./counters.js";

export const ENCAP_NONE = 0;
export const ENCAP_IPIP = 1;
export const ENCAP_VXLAN = 2;
export type Encap = typeof ENCAP_NONE | typeof ENCAP_IPIP | typeof ENCAP_VXLAN;

export const CH_DROP = 0;
export const CH_TUN = 1;
export const CH_IPIP = 2;
export const CH_VXLAN = 3;

interface Exports {
  memory: WebAssembly.Memory;
  configure(localAddr: number, underlayMtu: number, vni: number, vxlanPort: number, macHi: number, macLo: number): void;
  /** Each reads DESC_IN, writes DESC_OUT and returns the number of outputs. */
  encapBatch(count: number): number;
  decapIpipBatch(count: number, slotCap: number): number;
  decapVxlanBatch(count: number, slotCap: number): number;
  setOffloads(bits: number): void;
  setIcmpSource(addr: number): void;
  setVxlanSockets(n: number): void;
  layoutVxlanSocketsMax(): number;
  lpmInsert(prefix: number, len: number, route: number): number;
  lpmDelete(prefix: number, len: number, cover: number): void;
  lpmReset(): void;
  lpmNodesLive(): number;
  leaf(len: number, route: number): number;
  lookup(addr: number): number;
  lookupBench(n: number, rounds: number): number;
  nodesAdd(addr: number): number;
  nodesClear(): void;
  nodesHas(addr: number): number;
  routeSet(index: number, nextHop: number, encap: number, macHi: number, macLo: number, pathMtu: number): number;
  layoutDescIn(): number;
  layoutDescOut(): number;
  layoutDescSize(): number;
  layoutMaxIn(): number;
  layoutMaxOut(): number;
  layoutTally(): number;
  layoutMemoryEnd(): number;
  layoutSlots(): number;
  layoutSlotsBytes(): number;
  layoutCounters(): number;
  layoutCounterCount(): number;
  layoutScratch(): number;
  layoutScratchBytes(): number;
  layoutRouteCap(): number;
  layoutLpmBytes(): number;
  layoutLpmNodeBytes(): number;
  layoutLpmRootBytes(): number;
  layoutHeadroom(): number;
  /** Descriptor field offsets (asm/layout.ts D_*). */
  D_OFF: WebAssembly.Global;
  D_LEN: WebAssembly.Global;
  D_ADDR: WebAssembly.Global;
  D_PORT: WebAssembly.Global;
  D_CHANNEL: WebAssembly.Global;
  D_REASON: WebAssembly.Global;
  D_GSO: WebAssembly.Global;
  D_FLAGS: WebAssembly.Global;
  D_TAIL: WebAssembly.Global;
  /** Internet checksum sums (16-bit, unfolded complement) for tests. */
  checksumSum(p: number, len: number): number;
  checksumSumCopy(dst: number, src: number, len: number): number;
}

export interface FastRoute {
  prefix: Prefix;
  nextHop: number;
  encap: Encap;
  vtepMAC?: string;
}

export interface FastPathConfig {
  localAddr: number;
  underlayMTU: number;
  vni?: number;
  vxlanPort?: number;
  vtepMAC?: string;
  /** The source of the ICMP errors written into the TUN (default: localAddr). */
  icmpSource?: number;
}

function macWords(mac: string | undefined): [number, number] {
  const b = mac ? parseMAC(mac) : undefined;
  if (!b) return [0, 0];
  return [(b[0] << 8) | b[1], ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0];
}

/** Offload bits shared with asm/config.ts. */
export const OFFLOAD_VNET = 1;
export const OFFLOAD_GRO = 2;

const key = (p: Prefix) => `${p.addr}/${p.len}`;

let module: WebAssembly.Module | undefined;

export function wasmPath(): string {
  return path.join(projectRoot(), "dist", "asm", "fastpath.wasm");
}

/** Byte offsets of a descriptor's fields, read from the wasm module so they cannot drift. */
interface DescFields {
  off: number;
  len: number;
  addr: number;
  port: number;
  channel: number;
  gso: number;
  tail: number;
}

/** What the native side writes into an input descriptor after a receive. */
export interface InputDesc {
  off: number;
  len: number;
  /** Sender's IPv4 address (network order as a number), 0 for TUN reads. */
  from?: number;
  port?: number;
  /** UDP GRO segment size, 0 if the datagram was not coalesced. */
  gso?: number;
}

/** Node addresses the fast path's set takes (asm/layout.ts NODES_CAP / 2). */
export const MAX_NODES = 32768;

export class FastPath {
  readonly x: Exports;
  readonly descIn: number;
  readonly descOut: number;
  readonly descSize: number;
  readonly maxIn: number;
  private readonly tallyView: Uint32Array;
  readonly slots: number;
  readonly headroom: number;
  /** u64 counters in wasm memory (asm/layout.ts COUNTER_COUNT); host and thread counters mirror them. */
  readonly counterCount: number;
  private readonly field: DescFields;
  private readonly routes = new Map<string, { route: FastRoute; index: number }>();
  /** The same entries by route-record index (what the wasm lookup returns). */
  private readonly byIndex = new Map<number, { route: FastRoute; index: number }>();
  private readonly freeIndexes: number[] = [];
  private nextIndex = 1;

  constructor() {
    module ??= new WebAssembly.Module(readFileSync(wasmPath()));
    const instance = new WebAssembly.Instance(module, {
      env: {
        abort: () => {
          throw new Error("weft fast path aborted");
        },
      },
    });
    this.x = instance.exports as unknown as Exports;
    this.descIn = this.x.layoutDescIn();
    this.descOut = this.x.layoutDescOut();
    this.descSize = this.x.layoutDescSize();
    this.maxIn = this.x.layoutMaxIn();
    this.tallyView = new Uint32Array(this.x.memory.buffer, this.x.layoutTally(), 2 + this.x.layoutVxlanSocketsMax());
    this.slots = this.x.layoutSlots();
    this.headroom = this.x.layoutHeadroom();
    this.counterCount = this.x.layoutCounterCount();
    this.hostCounters = new Float64Array(this.counterCount);
    const x = this.x;
    this.field = {
      off: x.D_OFF.value,
      len: x.D_LEN.value,
      addr: x.D_ADDR.value,
      port: x.D_PORT.value,
      channel: x.D_CHANNEL.value,
      gso: x.D_GSO.value,
      tail: x.D_TAIL.value,
    };
  }

  get memory(): ArrayBuffer {
    return this.x.memory.buffer;
  }

  /**
   * Output i of the last batch as the native side sends it: channel, peer and the
   * packet's bytes (headers and, for a split segment, the payload tail joined).
   */
  output(i: number): { channel: number; addr: number; port: number; off: number; bytes: Uint8Array } {
    const mem = new Uint8Array(this.memory);
    const dv = new DataView(this.memory);
    const f = this.field;
    const d = this.descOut + i * this.descSize;
    const off = dv.getUint32(d + f.off, true);
    const len = dv.getUint32(d + f.len, true);
    const tail = dv.getUint32(d + f.tail, true);
    const tailLen = tail ? dv.getUint16(d + f.gso, true) : 0;
    const bytes = new Uint8Array(len);
    bytes.set(mem.subarray(off, off + len - tailLen));
    if (tailLen) bytes.set(mem.subarray(tail, tail + tailLen), len - tailLen);
    return { channel: mem[d + f.channel], addr: dv.getUint32(d + f.addr, true), port: dv.getUint16(d + f.port, true), off, bytes };
  }

  /** Writes input descriptor i as the native side does after a receive (tests and benchmarks). */
  input(i: number, desc: InputDesc): void {
    const dv = new DataView(this.memory);
    const f = this.field;
    const d = this.descIn + i * this.descSize;
    dv.setUint32(d + f.off, desc.off, true);
    dv.setUint32(d + f.len, desc.len, true);
    dv.setUint32(d + f.addr, desc.from ?? 0, true);
    dv.setUint16(d + f.port, desc.port ?? 0, true);
    dv.setUint16(d + f.gso, desc.gso ?? 0, true);
  }

  /** The configuration and node set last given, so a receive thread can copy them. */
  config?: FastPathConfig;
  nodeList: number[] = [];
  /** Called after the node set changes (a receive thread keeps its own copy). */
  onNodes?: (addrs: number[]) => void;

  configure(c: FastPathConfig): void {
    this.config = c;
    const [hi, lo] = macWords(c.vtepMAC);
    this.x.configure(c.localAddr >>> 0, c.underlayMTU, c.vni ?? 4096, c.vxlanPort ?? 4789, hi, lo);
    this.x.setIcmpSource((c.icmpSource ?? 0) >>> 0);
  }

  /**
   * Where the ICMP errors written into the TUN come from (0: the node's address).
   * Reverse-path filtering, loose or strict (net.ipv4.conf.all.rp_filter 2, Ubuntu's
   * default, or 1, as hardening guides set it), drops one from the node's address
   * arriving on the tunnel, since the kernel routes that address through the uplink;
   * the tunnel device's own address passes.
   */
  setIcmpSource(addr: number): void {
    if (this.config) this.config.icmpSource = addr;
    this.x.setIcmpSource(addr >>> 0);
  }

  /** Packets the last batch sent to an output channel (CH_TUN, CH_IPIP, CH_VXLAN + socket). */
  tally(channel: number): number {
    return this.tallyView[channel - 1];
  }

  setNodes(addrs: Iterable<number>): void {
    this.x.nodesClear();
    const list: number[] = [];
    for (const a of addrs) {
      if (!this.x.nodesAdd(a >>> 0)) throw new Error(`weft: more than ${MAX_NODES} nodes for the fast path's node set`);
      list.push(a >>> 0);
    }
    this.nodeList = list;
    this.onNodes?.(list);
  }

  /** Path MTUs smaller than the uplink's, by next hop (host order), learned from ICMP. */
  private readonly pathMtus = new Map<number, number>();

  /**
   * The underlay MTU toward a next hop when a router on the way has a smaller one than
   * the uplink (0: forget it): routes through it answer pods with fragmentation-needed
   * at that MTU less the encapsulation, as a kernel tunnel's path MTU discovery does.
   */
  setPathMtu(nextHop: number, mtu: number): void {
    const a = nextHop >>> 0;
    if (mtu > 0) this.pathMtus.set(a, mtu);
    else this.pathMtus.delete(a);
    for (const e of this.routes.values()) if (e.route.nextHop >>> 0 === a) this.write(e);
  }

  /** The path MTUs in use, by next hop. */
  pathMtuList(): Array<{ nextHop: number; mtu: number }> {
    return [...this.pathMtus].map(([nextHop, mtu]) => ({ nextHop, mtu }));
  }

  /** The path MTU toward a next hop, 0 when it is the uplink's. */
  pathMtu(nextHop: number): number {
    return this.pathMtus.get(nextHop >>> 0) ?? 0;
  }

  private write(entry: { route: FastRoute; index: number }): void {
    const [hi, lo] = macWords(entry.route.vtepMAC);
    this.x.routeSet(entry.index, entry.route.nextHop >>> 0, entry.route.encap, hi, lo, this.pathMtu(entry.route.nextHop));
  }

  /** Adds or replaces a route. */
  upsert(route: FastRoute): void {
    const prefix = { addr: (route.prefix.addr & maskOf(route.prefix.len)) >>> 0, len: route.prefix.len };
    const k = key(prefix);
    let entry = this.routes.get(k);
    if (!entry) {
      const index = this.freeIndexes.pop() ?? this.nextIndex++;
      if (index >= this.x.layoutRouteCap()) throw new Error("weft: fast-path route table is full");
      entry = { route, index };
    }
    entry.route = { ...route, prefix };
    this.write(entry);
    if (!this.x.lpmInsert(prefix.addr, prefix.len, entry.index)) {
      throw new Error(`weft: fast-path table out of memory inserting ${formatCIDR(prefix)}`);
    }
    this.routes.set(k, entry);
    this.byIndex.set(entry.index, entry);
  }

  remove(p: Prefix): boolean {
    const prefix = { addr: (p.addr & maskOf(p.len)) >>> 0, len: p.len };
    const k = key(prefix);
    const entry = this.routes.get(k);
    if (!entry) return false;
    this.routes.delete(k);
    this.byIndex.delete(entry.index);
    this.x.lpmDelete(prefix.addr, prefix.len, this.coverOf(prefix));
    this.freeIndexes.push(entry.index);
    return true;
  }

  /** Leaf value of the longest remaining prefix strictly shorter than p that covers it. */
  private coverOf(p: Prefix): number {
    for (let len = p.len - 1; len >= 0; len--) {
      const c = this.routes.get(key({ addr: (p.addr & maskOf(len)) >>> 0, len }));
      if (c) return this.x.leaf(len, c.index) >>> 0;
    }
    return 0;
  }

  list(): FastRoute[] {
    return [...this.routes.values()].map((e) => e.route);
  }

  /** The route the fast path would use for addr, if any. */
  lookup(addr: number): FastRoute | undefined {
    const index = this.x.lookup(addr >>> 0);
    return index === 0 ? undefined : this.byIndex.get(index)?.route;
  }

  /** Counters the host side keeps (batches, send failures, stage times): plain numbers, no wasm call. */
  private hostCounters: Float64Array<ArrayBufferLike>;
  /** Counters of another fast path (a receive thread's), published into shared memory. */
  private peers: SharedArrayBuffer[] = [];

  counters(): Counters {
    const view = new BigUint64Array(this.memory, this.x.layoutCounters(), this.counterCount);
    const sums = new Float64Array(this.counterCount);
    for (let i = 0; i < this.counterCount; i++) sums[i] = Number(view[i]) + this.hostCounters[i];
    for (const peer of this.peers) {
      const wasm = new BigUint64Array(peer, 0, this.counterCount);
      const host = new Float64Array(peer, this.counterCount * 8, this.counterCount);
      for (let i = 0; i < this.counterCount; i++) sums[i] += Number(wasm[i]) + host[i];
    }
    const out: Counters = {};
    for (const [i, name] of Object.entries(COUNTER_NAMES)) out[name] = sums[Number(i)];
    return out;
  }

  addCounter(index: number, n: number): void {
    this.hostCounters[index] += n;
  }

  /** Memory a thread's counters are published into (see publishCounters). */
  sharedCounters(): SharedArrayBuffer {
    return new SharedArrayBuffer(this.counterCount * 16);
  }

  /** Counts this fast path's host counters in shared memory, for publishCounters. */
  useSharedCounters(shared: SharedArrayBuffer): void {
    this.hostCounters = new Float64Array(shared, this.counterCount * 8, this.counterCount);
  }

  /** Copies the wasm counters into shared memory (a few hundred bytes, once per batch). */
  publishCounters(shared: SharedArrayBuffer): void {
    new Uint8Array(shared, 0, this.counterCount * 8).set(new Uint8Array(this.memory, this.x.layoutCounters(), this.counterCount * 8));
  }

  /** Adds another fast path's published counters to counters(). */
  addPeerCounters(shared: SharedArrayBuffer): void {
    this.peers.push(shared);
  }
}
