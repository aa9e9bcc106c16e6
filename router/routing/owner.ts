// The one owner of what weft installs: kernel routes tagged with weft's protocol, the
// fast path's table and node set, weft0's MTU and address, weft's nftables table
// (natOutgoing, the mark on the nodes' tunnel traffic, the drops of pods' tunnel and
// spoofed packets) and the iptables chains that let pod and tunnel traffic through
// (WEFT-FORWARD, WEFT-INPUT); at its periodic check, IPv4 forwarding too (the node turns
// it on when it starts). It takes the whole desired state each time, compares it with
// what it installed (with what is there, at the check), and changes only the
// difference; it never touches a route it does not own.
import type { Logger } from "pino";
import { formatCIDR, formatIPv4, parseCIDR, parseIPv4 } from "../dataplane/addr.js";
import type { FastPath, FastRoute } from "../dataplane/fastpath.js";
import * as kernel from "../native/iproute.js";
import { native } from "../native/index.js";
import { addPodDrops, applyWeftTable, dropPolicyChainsOnHost, hexMark, noPodDrops, podDrops, weftTableInstalled, type PodDrops, type WeftTable } from "../native/nft.js";
import { chainInstalled, forwardSpec, inputSpec, installChain, iptablesBackends, type Backend, type ChainSpec } from "../native/iptables.js";
import { desiredState, InstalledRoutes, type LocalNode, type RemoteBlock } from "./desired.js";

export interface Desired {
  remote: RemoteBlock[];
  /** Own blocks, installed as blackhole so nothing inside them leaks to the default route. */
  localBlocks?: string[];
  tunnelMTU: number;
  /**
   * The node's tunnel address, set on weft0 as a /32 (as Calico sets it on tunl0 and
   * vxlan.calico) so the host's own traffic to remote pods leaves with a pod-network
   * source whose replies come back through the tunnel, not across the underlay as
   * unencapsulated pod traffic. null: none yet (weft0 gets no address); undefined
   * leaves weft0's addresses alone (static mode).
   */
  tunnelAddress?: string | null;
  /** natOutgoing sets; undefined leaves nftables alone (static mode). */
  nat?: { masqPools: string[]; allPools: string[] };
  /**
   * Let weft's traffic through the host's iptables: pod traffic in FORWARD (a DROP
   * policy, Docker's, would drop it), IPIP and VXLAN from the nodes in INPUT (marked with
   * the bit mark in weft's nftables table, which needs nat set too).
   * undefined leaves iptables alone (static mode).
   */
  hostFirewall?: { vxlanPort: number; mark: number };
  /** Add and change only (graceful restart: the RIB is not complete yet). */
  keepRemovals?: boolean;
  /**
   * Also check what is cached as done (the kernel's routes, the natOutgoing table): the
   * periodic resync repairs what someone else removed (a route deleted, an "nft flush
   * ruleset"); other syncs compare with what this owner installed.
   */
  verify?: boolean;
}

/**
 * Lets the event loop run (the data path, BGP keepalives) between the steps of an apply:
 * with a peer's 100,000 routes each step takes ~0.1 s, and together they held packets
 * for a third of a second at every 30 s check. Two check phases, so that the loop polls
 * for I/O in between whichever phase this is called from.
 */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

/** Routes named one by one in a "routes updated" log line; past these, a count. */
const LOGGED_ROUTES = 50;
const fastKey = (r: FastRoute) => `${formatCIDR(r.prefix)} ${r.nextHop} ${r.encap} ${r.vtepMAC ?? ""}`;

export class RouteOwner {
  private mtu = 0;
  private natKey = "";
  private tableKey = "";
  private markedKey = "";
  /** false: this kernel's nftables refused the fib expression (no nft_fib_ipv4). */
  private sourceCheck = true;
  /** Drops of pods' packets counted by tables this owner replaced (a new table counts from 0). */
  private readonly podDropsBefore = noPodDrops();
  /** The iptables backends weft's chains go in (none: no iptables command); undefined: not looked yet. */
  private backends: Backend[] | undefined;
  /** Each weft chain's rules as last installed, by backend and chain. */
  private readonly chains = new Map<string, string>();
  private nodesKey = "";
  private refusedKey = "[]";
  private shadowedKey = "[]";
  private addressKey: string | undefined;
  private ifindex = 0;
  /** weft's kernel routes as this owner last listed and changed them; undefined: list them. */
  private installed: InstalledRoutes | undefined;
  /** The kernel routes of the last apply, by kind (for the weft_routes metric). */
  routeCounts: Record<"blackhole" | "tunnel" | "direct" | "external", number> = { blackhole: 0, tunnel: 0, direct: 0, external: 0 };

  constructor(
    private readonly fp: FastPath,
    private readonly local: LocalNode,
    private readonly log: Logger,
  ) {}

  /** weft0's MTU as last set. */
  get tunnelMTU(): number {
    return this.mtu;
  }

  /** The kernel removed the routes through dev with it (set down, deleted, or stripped of its last address): not someone else's doing. */
  routesGoneWith(dev: string): void {
    this.installed?.forget(dev);
  }

  async apply(d: Desired): Promise<{ changed: number; removed: number; kept: number; fastChanged: number }> {
    const want = desiredState(this.local, d.remote, d.localBlocks);
    const refusedKey = JSON.stringify(want.refused);
    if (refusedKey !== this.refusedKey) {
      const pools = want.refused.filter((r) => !r.external);
      const peers = want.refused.filter((r) => r.external);
      if (pools.length) this.log.error({ blocks: pools }, "blocks that cover a node's underlay address are not routed (does an IP pool overlap the hosts' network?)");
      if (peers.length) this.log.warn({ routes: peers }, "routes from BGP peers that cover a node's underlay address (a default route, the hosts' network) are not installed: the node's own route to the other nodes must stay");
      this.refusedKey = refusedKey;
    }
    const shadowedKey = JSON.stringify(want.shadowed);
    if (shadowedKey !== this.shadowedKey) {
      if (want.shadowed.length) this.log.warn({ routes: want.shadowed }, "routes others announce for this node's own blocks are not installed: its blackhole for them stays (a stale or misconfigured announcement)");
      this.shadowedKey = shadowedKey;
    }
    // Fast path first, so a route the kernel starts using is already known.
    const nodesKey = want.nodes.sort().join(",");
    if (nodesKey !== this.nodesKey) {
      this.fp.setNodes(want.nodes);
      this.nodesKey = nodesKey;
    }
    const have = new Map(this.fp.list().map((r) => [formatCIDR(r.prefix), r]));
    const wantFast = new Map(want.fast.map((r) => [formatCIDR(r.prefix), r]));
    let fastChanged = 0;
    for (const [cidr, r] of wantFast) {
      if (have.has(cidr) && fastKey(have.get(cidr)!) === fastKey(r)) continue;
      this.fp.upsert(r);
      fastChanged++;
    }
    if (!d.keepRemovals) {
      for (const [cidr] of have) {
        if (wantFast.has(cidr)) continue;
        this.fp.remove(parseCIDR(cidr)!);
        fastChanged++;
      }
    }
    // Not before: packets read meanwhile would meet a fast path without this sync's routes
    // (at a node's start, an empty one that answers "unreachable").
    await nextTurn();

    // The device as it is (someone may have set it down, or its MTU, or made it anew).
    const link = kernel.linkInfo(this.local.tunnelDevice);
    // The kernel removed every route through a weft0 found down or made anew.
    if (!link || !link.up) this.routesGoneWith(this.local.tunnelDevice);
    if (!link || !link.up || link.mtu !== d.tunnelMTU) {
      native().linkSet(this.local.tunnelDevice, d.tunnelMTU, true);
      if (this.mtu && d.tunnelMTU !== this.mtu) this.log.info({ from: this.mtu, to: d.tunnelMTU }, "tunnel MTU changed");
      else if (this.mtu && link) this.log.warn({ tunnel: this.local.tunnelDevice, up: link.up, mtu: link.mtu }, `${this.local.tunnelDevice} was changed by someone else (down, or another MTU): set up with MTU ${d.tunnelMTU} again`);
    }
    // Also when the device already had it (a restart finds weft0 as it left it).
    this.mtu = d.tunnelMTU;
    if (link && link.ifindex !== this.ifindex) {
      this.ifindex = link.ifindex;
      this.addressKey = undefined; // a device made anew has no address
      this.routesGoneWith(this.local.tunnelDevice);
    }
    if (d.tunnelAddress !== undefined) await this.tunnelAddress(d.tunnelAddress, d.verify);
    // Set when the node started; a sysctl reload with a hardening file ("net.ipv4.ip_forward
    // = 0") turns it off, and every interface's forwarding with it: no pod reached another host.
    if (d.verify && kernel.sysctl("net.ipv4.ip_forward") === "0") {
      kernel.setSysctl("net.ipv4.ip_forward", 1);
      this.log.warn("IPv4 forwarding was turned off by someone else (a sysctl reload with net.ipv4.ip_forward = 0 in /etc/sysctl.d?): turned it on again; pods reached no other host meanwhile");
    }
    if (d.verify || !this.installed) {
      const routes = await kernel.listWeftRoutes();
      await nextTurn(); // each of these steps takes ~0.05-0.1 s with a peer's 100,000 routes
      const listed = new InstalledRoutes(routes);
      await nextTurn();
      const gone = this.installed?.missingFrom(listed) ?? [];
      if (gone.length) this.log.warn({ routes: gone.slice(0, LOGGED_ROUTES).map((r) => r.dst), count: gone.length }, `${gone.length} of weft's routes were removed or changed outside weft (an "ip route" command, another routing daemon, their device set down or its address removed?): putting them back`);
      this.installed = listed;
      await nextTurn();
    }
    const installed = this.installed;
    const diff = installed.diff(want.kernel);
    if (d.keepRemovals) diff.remove = [];
    const kept = installed.size - diff.remove.length;
    try {
      await kernel.changeRoutes(diff.replace, diff.remove);
    } catch (err) {
      this.installed = undefined; // some went in, some did not: list them next time
      throw err;
    }
    installed.changed(diff.replace, diff.remove);
    this.routeCounts = { blackhole: 0, tunnel: 0, direct: 0, external: 0 };
    for (const r of want.kernel) this.routeCounts[r.type === "blackhole" ? "blackhole" : r.metric ? "external" : r.dev === this.local.tunnelDevice ? "tunnel" : "direct"]++;
    if (diff.replace.length || diff.remove.length) {
      const changed = diff.replace.slice(0, LOGGED_ROUTES).map((r) => `${r.type ?? ""} ${r.dst} ${r.gateway ? `via ${r.gateway} ` : ""}${r.dev ? `dev ${r.dev}` : ""}`.trim());
      const removed = diff.remove.slice(0, LOGGED_ROUTES).map((r) => r.dst);
      // A peer's full table would make one log line of megabytes: the first ones and the counts.
      if (diff.replace.length > LOGGED_ROUTES) changed.push(`... and ${diff.replace.length - LOGGED_ROUTES} more`);
      if (diff.remove.length > LOGGED_ROUTES) removed.push(`... and ${diff.remove.length - LOGGED_ROUTES} more`);
      this.log.info({ changed, removed, changedCount: diff.replace.length, removedCount: diff.remove.length }, "routes updated");
    }
    if (d.nat) await this.weftTable({ ...d.nat, tunnel: d.hostFirewall && { nodes: want.nodes.map(formatIPv4), mark: d.hostFirewall.mark, vxlanPort: d.hostFirewall.vxlanPort, sourceCheck: this.sourceCheck } }, d.nat, d.verify);
    if (d.hostFirewall) await this.hostFirewall([forwardSpec(this.local.tunnelDevice), inputSpec(d.hostFirewall.mark)], d.hostFirewall.mark, d.verify);
    return { changed: diff.replace.length, removed: diff.remove.length, kept, fastChanged };
  }

  /** Installs weft's nftables table when it changed, or when verify finds it (or part of it) gone. */
  private async weftTable(table: WeftTable, nat: NonNullable<Desired["nat"]>, verify?: boolean): Promise<void> {
    const k = JSON.stringify(table);
    let repair = false;
    if (k === this.tableKey && verify && !(await weftTableInstalled(table))) {
      this.log.warn("weft's nftables table (natOutgoing, the mark on the nodes' tunnel traffic) was removed by someone else (an nft flush?), or part of it: installing it again");
      repair = true;
    }
    if (k === this.tableKey && !repair) return;
    // A new table counts from 0: keep what the one it replaces counted.
    if (this.tableKey) addPodDrops(this.podDropsBefore, await podDrops());
    try {
      await applyWeftTable(table);
    } catch (err) {
      // Only the source check needs a module beyond nftables' core (nft_fib_ipv4):
      // without it the rest still goes in, and the veths' rp_filter is what is left.
      if (!table.tunnel?.sourceCheck || !/fib/.test((err as Error).message)) throw err;
      table.tunnel.sourceCheck = this.sourceCheck = false;
      await applyWeftTable(table);
      this.log.warn({ err: (err as Error).message }, "this kernel's nftables has no fib expression (module nft_fib_ipv4): pods' source addresses are checked only by rp_filter on their veths, and those drops are not counted");
    }
    const natKey = JSON.stringify(nat);
    if (natKey !== this.natKey || repair) this.log.info(nat, "natOutgoing rules updated");
    const nodesKey = JSON.stringify(table.tunnel?.nodes ?? null);
    if (table.tunnel && nodesKey !== this.markedKey) this.log.info({ nodes: table.tunnel.nodes.length, mark: hexMark(table.tunnel.mark) }, "IPIP and VXLAN from the cluster's nodes marked for WEFT-INPUT (nftables table weft, set nodes)");
    this.markedKey = nodesKey;
    this.natKey = natKey;
    this.tableKey = JSON.stringify(table);
  }

  /** This host's pods' packets dropped in weft's table since the node started, by why. */
  async podDrops(): Promise<PodDrops> {
    const total = { ...this.podDropsBefore };
    return this.tableKey ? addPodDrops(total, await podDrops()) : total;
  }

  private async hostFirewall(specs: ChainSpec[], mark: number, verify?: boolean): Promise<void> {
    // Which backends hold rules is looked at again by the 30 s check (Docker may start later).
    if (verify || !this.backends) this.backends = await iptablesBackends();
    for (const b of this.backends) {
      for (const spec of specs) {
        const id = `${b.name} ${spec.chain}`;
        const key = JSON.stringify(spec.rules);
        const had = this.chains.get(id);
        const where = b.primary ? "" : ` (${b.iptables})`;
        if (had === key && verify && !(await chainInstalled(spec, b))) {
          this.log.warn({ chain: spec.chain, backend: b.name }, `${spec.chain}${where} (or the jump to it from ${spec.from}) was removed by someone else (an iptables flush, a firewall reload?): installing it again`);
        } else if (had === key) continue;
        await installChain(spec, b);
        this.chains.set(id, key);
        if (!b.primary) {
          if (had === undefined) this.log.info({ chain: spec.chain, backend: b.name, command: b.iptables }, `${b.iptables} holds filter rules on this host too, and a packet passes both backends (a DROP policy in either drops it): ${spec.chain} and the jump from ${spec.from} are there as well`);
        } else if (spec.chain === "WEFT-FORWARD") {
          this.log.info({ chain: spec.chain, devices: ["cali+", this.local.tunnelDevice] }, "iptables FORWARD accepts pod traffic (a DROP policy, as Docker sets, would drop it)");
          const dropping = had === undefined ? await dropPolicyChainsOnHost("forward") : [];
          if (dropping.length) this.log.warn({ chains: dropping, accept: ["cali*", this.local.tunnelDevice] }, `nftables chain ${dropping.join(", ")} drops forwarded traffic by policy, which weft's iptables accept does not override: pod traffic through this host is dropped there unless it accepts iifname/oifname "cali*" and ${this.local.tunnelDevice}`);
        } else {
          this.log.info({ chain: spec.chain, rule: spec.rules[0].join(" ") }, "iptables INPUT accepts IPIP and VXLAN from the cluster's nodes (as marked in nftables table weft)");
          const dropping = had === undefined ? await dropPolicyChainsOnHost("input") : [];
          // weft's table marks them at the mangle priority, before any filter chain: one rule there is enough.
          const accept = `meta mark & ${hexMark(mark)} == ${hexMark(mark)} accept`;
          if (dropping.length) this.log.warn({ chains: dropping, accept }, `nftables chain ${dropping.join(", ")} drops input by policy, which weft's iptables accept does not override: IPIP and VXLAN from the nodes are dropped there unless it accepts them, e.g. with "${accept}"`);
        }
      }
    }
  }

  private async tunnelAddress(address: string | null, verify?: boolean): Promise<void> {
    // weft's ICMP errors come from it, which reverse-path filtering lets through (run.ts).
    this.fp.setIcmpSource(address ? parseIPv4(address)! : 0);
    const want = address ? [`${address}/32`] : [];
    const key = want.join(",");
    if (key === this.addressKey && !verify) return;
    const dev = this.local.tunnelDevice;
    const have = await kernel.deviceAddresses(dev);
    if (have.join(",") === key) {
      this.addressKey = key;
      return;
    }
    await kernel.setDeviceAddresses(dev, want, have);
    if (this.addressKey === key) this.log.warn({ tunnel: dev, found: have, address }, `${dev}'s address was changed by someone else: set it back`);
    else this.log.info({ tunnel: dev, address, removed: have.filter((a) => !want.includes(a)) }, `${dev} address set`);
    this.addressKey = key;
  }
}
