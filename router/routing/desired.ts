// The whole desired state of a node, computed from what it knows about remote
// blocks: kernel routes (weft's protocol only), the fast-path table and the set of
// nodes whose encapsulated packets are accepted.
import { contains, parseCIDR, parseIPv4 } from "../dataplane/addr.js";
import { ENCAP_IPIP, ENCAP_VXLAN, type FastRoute } from "../dataplane/fastpath.js";
import { vtepMAC } from "../dataplane/vtep.js";
import type { KernelRoute } from "../native/iproute.js";

export type Encapsulation = "IPIP" | "VXLAN" | "None";

/** Bytes each encapsulation adds to a packet (the tunnel MTU is the uplink's minus this). */
export const OVERHEAD = { IPIP: 20, VXLAN: 50, None: 0 } as const satisfies Record<Encapsulation, number>;

export interface RemoteBlock {
  cidr: string;
  node: string;
  address: string; // the node's underlay address
  encapsulation: Encapsulation;
  vtepMAC?: string;
  /** Learned from a BGP peer that is no node (a ToR, an external router): a plain route. */
  external?: boolean;
  /** BGPPeer reachableBy: the route to a peer's own address through the gateway the operator gave. */
  pinned?: boolean;
}

/**
 * Routes learned from external BGP peers go in at this priority (BIRD's kernel
 * protocol uses the same), beside the host's own routes rather than over them: a
 * host route for the same prefix (metric 0) still wins, and survives the withdrawal.
 */
export const EXTERNAL_ROUTE_METRIC = 32;

export interface LocalNode {
  /** This node's underlay address. */
  address?: string;
  tunnelDevice: string;
  uplink: string;
  /** The underlay's own next hop toward a node off our subnet (its gateway), if any. */
  underlayGateway?: (address: string) => string | undefined;
}

export interface DesiredState {
  kernel: KernelRoute[];
  fast: FastRoute[];
  nodes: number[];
  /** Blocks left out because they cover a node's underlay address (a pool overlapping
   * the hosts' network, or a peer's default route). */
  refused: Array<{ cidr: string; node: string; covers: string; external?: boolean }>;
  /** Routes others announce for one of this node's own blocks: the local blackhole
   * stays (as BIRD prefers its static route over BGP's), these are not installed. */
  shadowed: Array<{ cidr: string; node: string; external?: boolean }>;
}

/** localBlocks: this node's own blocks, installed as blackhole so nothing inside them
 * leaks to the default route; one route per prefix, and for these it is the blackhole. */
export function desiredState(local: LocalNode, blocks: RemoteBlock[], localBlocks: string[] = []): DesiredState {
  const kernel: KernelRoute[] = localBlocks.map((dst) => ({ dst, type: "blackhole" }));
  const fast: FastRoute[] = [];
  const nodes = new Set<number>();
  const refused: DesiredState["refused"] = [];
  const shadowed: DesiredState["shadowed"] = [];
  const own = new Set(localBlocks);
  // A route over a node's underlay address would send the tunnel's own packets into
  // the tunnel (or, over this node's subnet, replace its connected route).
  const addresses = new Map<string, number>();
  for (const a of [...(local.address ? [local.address] : []), ...blocks.map((b) => b.address)]) if (!addresses.has(a)) addresses.set(a, parseIPv4(a)!);
  const underlay = [...addresses];
  for (const b of blocks) {
    const nextHop = addresses.get(b.address)!;
    // Encapsulated packets are taken from cluster nodes only, not from external routers.
    if (!b.external) nodes.add(nextHop);
    if (own.has(b.cidr)) {
      shadowed.push({ cidr: b.cidr, node: b.node, ...(b.external ? { external: true } : {}) });
      continue;
    }
    const block = parseCIDR(b.cidr)!;
    // A pinned route is to a peer's address, which other routes name as next hop: it is the route they need, not one over them.
    const covers = b.pinned ? undefined : underlay.find(([, a]) => contains(block, a))?.[0];
    if (covers) {
      refused.push({ cidr: b.cidr, node: b.node, covers, ...(b.external ? { external: true } : {}) });
      continue;
    }
    if (b.external) {
      kernel.push({ dst: b.cidr, gateway: local.underlayGateway?.(b.address) ?? b.address, dev: local.uplink, metric: EXTERNAL_ROUTE_METRIC });
      continue;
    }
    if (b.encapsulation === "None") {
      // Direct routing is the kernel's own: no userspace hop. A node off our subnet
      // is reached through the underlay's gateway, which must then know the block.
      kernel.push({ dst: b.cidr, gateway: local.underlayGateway?.(b.address) ?? b.address, dev: local.uplink });
      continue;
    }
    kernel.push({ dst: b.cidr, gateway: b.address, dev: local.tunnelDevice, onlink: true });
    fast.push({
      prefix: block,
      nextHop,
      encap: b.encapsulation === "VXLAN" ? ENCAP_VXLAN : ENCAP_IPIP,
      vtepMAC: b.encapsulation === "VXLAN" ? (b.vtepMAC ?? vtepMAC(b.node)) : undefined,
    });
  }
  return { kernel, fast, nodes: [...nodes], refused, shadowed };
}

const same = (a: KernelRoute, b: KernelRoute) =>
  a.dst === b.dst && a.gateway === b.gateway && a.dev === b.dev && (a.type ?? "") === (b.type ?? "") && !!a.onlink === !!b.onlink && (a.metric ?? 0) === (b.metric ?? 0);

/**
 * weft's routes in the kernel, as listed or as last changed, keyed by metric and
 * destination (another metric is another route to the kernel). Kept between syncs by
 * the route owner, so that a sync compares with what it installed rather than list
 * the kernel again: with a peer's 100,000 routes that listing (8 MB of JSON from `ip`)
 * and the maps built from it were most of every sync, and one route changed beside them
 * reached the kernel 1.5-2.4 s later (0.2-0.4 s without). Each diff marks what it wants
 * with a new generation; what is left unmarked is to go.
 */
export class InstalledRoutes {
  private readonly byMetric = new Map<number, Map<string, { route: KernelRoute; gen: number }>>();
  private gen = 0;

  constructor(routes: KernelRoute[] = []) {
    for (const r of routes) this.set(r);
  }

  get size(): number {
    let n = 0;
    for (const m of this.byMetric.values()) n += m.size;
    return n;
  }

  private set(r: KernelRoute, gen = this.gen): void {
    const metric = r.metric ?? 0;
    let m = this.byMetric.get(metric);
    if (!m) this.byMetric.set(metric, (m = new Map()));
    m.set(r.dst, { route: r, gen });
  }

  /** What to change so that these become desired: unchanged routes are left alone. */
  diff(desired: KernelRoute[]): { replace: KernelRoute[]; remove: KernelRoute[] } {
    const gen = ++this.gen;
    const replace: KernelRoute[] = [];
    for (const r of desired) {
      const h = this.byMetric.get(r.metric ?? 0)?.get(r.dst);
      if (h) h.gen = gen;
      if (!h || !same(r, h.route)) replace.push(r);
    }
    const remove: KernelRoute[] = [];
    for (const m of this.byMetric.values()) for (const h of m.values()) if (h.gen !== gen) remove.push(h.route);
    return { replace, remove };
  }

  /** Routes here that other lacks, or has otherwise (what someone else removed or changed, when other is the kernel's listing). */
  missingFrom(other: InstalledRoutes): KernelRoute[] {
    const out: KernelRoute[] = [];
    for (const [metric, m] of this.byMetric) {
      const o = other.byMetric.get(metric);
      for (const [dst, h] of m) {
        const x = o?.get(dst);
        if (!x || !same(h.route, x.route)) out.push(h.route);
      }
    }
    return out;
  }

  /** The kernel removed every route through dev (set down, deleted, or stripped of its last address). */
  forget(dev: string): void {
    for (const m of this.byMetric.values()) for (const [dst, h] of m) if (h.route.dev === dev) m.delete(dst);
  }

  /** The kernel took these changes (replace after remove: a route's new metric is another entry). */
  changed(replace: KernelRoute[], remove: KernelRoute[]): void {
    for (const r of remove) this.byMetric.get(r.metric ?? 0)?.delete(r.dst);
    for (const r of replace) this.set(r);
  }
}
