// The desired state of a node in a cluster: from pools, Node resources and block
// affinities (BGP adds its RIB later), which blocks are local (blackhole), which are
// remote and how each is reached (IPIP, VXLAN or direct, CrossSubnet decided by the
// local node's prefix), which nodes may send us encapsulated traffic, and natOutgoing.
import { contains, parseCIDR, parseIPv4 } from "../dataplane/addr.js";
import { vtepMAC } from "../dataplane/vtep.js";
import { nodeIPv4, nodeVtepMAC, type IPPool, type NodeResource } from "../resources/kinds.js";
import { addressAt, nodeOfAffinity, poolHolding, type Block } from "../ipam/ipam.js";
import { OVERHEAD, type Encapsulation, type RemoteBlock } from "./desired.js";

export interface ClusterView {
  pools: IPPool[];
  nodes: NodeResource[];
  blocks: Block[];
}

export interface ClusterState {
  localBlocks: string[];
  remote: RemoteBlock[];
  knownNodes: string[];
  masqPools: string[];
  allPools: string[];
  /** Which encapsulations the pools enable (weft0's MTU follows them: tunnelMTU()). */
  encapsulations: { ipip: boolean; vxlan: boolean };
}

export function nodeAddress(n: NodeResource): string | undefined {
  return nodeIPv4(n)?.cidr;
}

/** How traffic to a node at remoteAddr goes for a pool, seen from a node at localCIDR. */
export function encapsulationFor(pool: IPPool, localCIDR: string, remoteAddr: string): Encapsulation {
  const local = parseCIDR(localCIDR, false);
  const r = parseIPv4(remoteAddr);
  // A node registered as /32 is never in our subnet (the CrossSubnet trap).
  const sameSubnet = !!local && r !== undefined && local.len < 32 && contains(local, r);
  const pick = (mode: string, encap: Encapsulation): Encapsulation | undefined =>
    mode === "Always" ? encap : mode === "CrossSubnet" ? (sameSubnet ? "None" : encap) : undefined;
  return pick(pool.spec.vxlanMode, "VXLAN") ?? pick(pool.spec.ipipMode, "IPIP") ?? "None";
}

/** The pool an IPv4 prefix (a CIDR) lies in; none for anything else. */
function poolOfPrefix(pools: IPPool[], cidr: string): IPPool | undefined {
  const c = parseCIDR(cidr, false);
  return c && poolHolding(pools, c);
}

function poolOf(pools: IPPool[], b: Block): IPPool | undefined {
  return pools.find((p) => p.metadata.name === b.pool) ?? poolOfPrefix(pools, b.cidr);
}

/** Remote routes from BGP best paths: a pod block toward its node (encapsulated per its
 * pool); anything else (an external router's route, a prefix in no pool) as a plain
 * route via its next hop, beside the host's own routes. */
export function remoteFromBgp(me: string, view: ClusterView, best: Array<{ prefix: string; nextHop: string }>): RemoteBlock[] {
  const byAddr = new Map(view.nodes.map((n) => [nodeIPv4(n)?.address, n]));
  const mine = view.nodes.find((n) => n.metadata.name === me);
  const localCIDR = mine ? (nodeAddress(mine) ?? "") : "";
  const out: RemoteBlock[] = [];
  for (const { prefix, nextHop } of best) {
    const n = byAddr.get(nextHop);
    if (n?.metadata.name === me) continue;
    const pool = poolOfPrefix(view.pools, prefix);
    if (n && pool) out.push({ cidr: prefix, node: n.metadata.name, address: nextHop, encapsulation: encapsulationFor(pool, localCIDR, nextHop), vtepMAC: nodeVtepMAC(n) ?? vtepMAC(n.metadata.name) });
    // Not a pod block (an external router's route, or one a Calico node in the mesh
    // announces, such as its service addresses): a plain route beside the host's own.
    else out.push({ cidr: prefix, node: n?.metadata.name ?? nextHop, address: nextHop, encapsulation: "None", external: true });
  }
  return out;
}

/**
 * While a restarted node waits for its peers' routes (graceful restart), the blocks the
 * datastore places on other nodes where BGP has said nothing yet, so that pods keep
 * reaching them through the restart rather than from the peers' routes on (about a
 * second without them, each restart). Only what BGP would carry: not the blocks of a
 * pool with disableBGPExport. BGP's own routes win; when the restart is over, what BGP
 * does not have goes, as any stale route does.
 */
export function withRestartSeed(fromBgp: RemoteBlock[], fromDatastore: RemoteBlock[], pools: IPPool[]): RemoteBlock[] {
  const have = new Set(fromBgp.map((r) => r.cidr));
  return [...fromBgp, ...fromDatastore.filter((r) => !have.has(r.cidr) && !r.external && !poolOfPrefix(pools, r.cidr)?.spec.disableBGPExport)];
}

/** What this node announces over BGP: its blocks (unless the pool says disableBGPExport)
 * and the single addresses it borrowed from other nodes' blocks. Never more-specifics
 * inside its own blocks. */
export function bgpExports(me: string, view: ClusterView): string[] {
  const out: string[] = [];
  for (const b of view.blocks) {
    const pool = poolOf(view.pools, b);
    if (!pool || pool.spec.disableBGPExport || pool.spec.cidr.includes(":")) continue;
    const owner = nodeOfAffinity(b.affinity);
    if (owner === me) out.push(b.cidr);
    else for (const [ord, al] of Object.entries(b.allocations)) if (al.node === me) out.push(`${addressAt(b, Number(ord))}/32`);
  }
  return out;
}

/**
 * Which routes learned from BGP peers this node passes on to its other peers: those
 * inside a pool without disableBGPExport. Calico's BIRD export filter matches a route
 * by the pool it lies in, not by where it was learned, so a ToR peered with one node
 * learns every node's blocks.
 */
export function bgpPassesOn(view: ClusterView): (cidr: string) => boolean {
  return (cidr) => {
    const pool = poolOfPrefix(view.pools, cidr);
    return !!pool && !pool.spec.disableBGPExport;
  };
}

export function clusterState(me: string, view: ClusterView): ClusterState {
  const nodes = new Map(view.nodes.map((n) => [n.metadata.name, n]));
  const mine = nodes.get(me);
  const localCIDR = mine ? (nodeAddress(mine) ?? "") : "";
  const localBlocks: string[] = [];
  const remote: RemoteBlock[] = [];
  const route = (cidr: string, owner: string, pool: IPPool) => {
    const n = nodes.get(owner);
    const addr = n && nodeIPv4(n)?.address;
    if (!n || !addr) return; // a node we cannot reach (not registered yet)
    remote.push({ cidr, node: owner, address: addr, encapsulation: encapsulationFor(pool, localCIDR, addr), vtepMAC: nodeVtepMAC(n) ?? vtepMAC(owner) });
  };
  for (const b of view.blocks) {
    const owner = nodeOfAffinity(b.affinity);
    const pool = poolOf(view.pools, b);
    if (!pool || pool.spec.cidr.includes(":")) continue;
    if (owner === me) localBlocks.push(b.cidr);
    else if (owner) route(b.cidr, owner, pool);
    // Borrowed addresses: a /32 toward the node that holds each, unless it is us.
    for (const [ord, al] of Object.entries(b.allocations)) {
      if (al.node !== owner && al.node !== me) route(`${addressAt(b, Number(ord))}/32`, al.node, pool);
    }
  }
  const v4Pools = view.pools.filter((p) => !p.spec.cidr.includes(":"));
  const knownNodes = view.nodes.filter((n) => n.metadata.name !== me).map((n) => nodeIPv4(n)?.address).filter((a): a is string => !!a);
  return {
    localBlocks,
    remote,
    knownNodes,
    masqPools: v4Pools.filter((p) => p.spec.natOutgoing).map((p) => p.spec.cidr),
    allPools: v4Pools.map((p) => p.spec.cidr),
    encapsulations: poolEncapsulations(view.pools),
  };
}

/** Which encapsulations the IPv4 pools enable (weft0's MTU and the Node's tunnel fields follow them). */
export function poolEncapsulations(pools: IPPool[]): { ipip: boolean; vxlan: boolean } {
  const v4 = pools.filter((p) => !p.spec.cidr.includes(":"));
  return { ipip: v4.some((p) => p.spec.ipipMode !== "Never"), vxlan: v4.some((p) => p.spec.vxlanMode !== "Never") };
}

/**
 * weft0's MTU, as Calico sizes its tunnels: each encapsulation's MTU is the uplink's
 * minus its overhead (IPIP 20, VXLAN 50) unless set (Calico's FELIX_IPINIPMTU and
 * FELIX_VXLANMTU), and the smallest among the enabled ones wins. With none enabled,
 * IPIP's (the tunnel still carries ICMP errors and the host's own traffic).
 */
export function tunnelMTU(uplinkMTU: number, enabled: { ipip: boolean; vxlan: boolean }, set: { ipip?: number; vxlan?: number } = {}): number {
  const ipip = set.ipip ?? uplinkMTU - OVERHEAD.IPIP;
  const vxlan = set.vxlan ?? uplinkMTU - OVERHEAD.VXLAN;
  if (enabled.vxlan) return enabled.ipip ? Math.min(ipip, vxlan) : vxlan;
  return ipip;
}
