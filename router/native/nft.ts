// weft's own nftables table, `ip weft`, replaced whole in one transaction:
// - natOutgoing: masquerade traffic from a pool with natOutgoing to any destination
//   outside every pool (Calico's masq-pools / all-pools rule);
// - the tunnel mark: IPIP and VXLAN from the cluster's nodes get one bit of the packet
//   mark before iptables' filter table sees them, so WEFT-INPUT accepts them with one
//   rule on that bit. The nodes are a hashed set, looked up once per packet whatever
//   their number (a rule per node, as WEFT-INPUT had, is walked packet by packet:
//   with 500 nodes it cut IPIP to a quarter);
// - IPIP and VXLAN sent by pods (in from a cali* interface) are dropped, and counted, in
//   forward, as Calico drops "encapped packets originating in workloads": natOutgoing
//   would masquerade such a packet to the node's own address, and another node would
//   take it as tunnel traffic from a node and deliver whatever it carries, spoofed
//   source and all;
// - packets in from a pod whose source address is not that pod's (its /32 route is not
//   through the interface it came in on: strict reverse-path filtering) are dropped, and
//   counted, in prerouting, so a pod cannot pass itself off as another pod or a host.
//   weft-cni also sets rp_filter on the pod's veth, as Calico does; that drop comes
//   later and counts nowhere a user looks, and a veth wired by anything else, or reset
//   to 0, does not have it.
import { command } from "./command.js";

export const NFT_TABLE = "weft";

/** The lowest bit of Calico's default iptablesMarkMask, 0xffff0000. */
export const DEFAULT_TUNNEL_MARK = 0x10000;

/** Who gets the tunnel mark: IPIP, and UDP to vxlanPort, from these node addresses. */
export interface TunnelMark {
  nodes: string[];
  mark: number;
  vxlanPort: number;
  /** The pods' source check (needs nftables' fib expression, a module some kernels lack); default on. */
  sourceCheck?: boolean;
}

export interface WeftTable {
  masqPools: string[];
  allPools: string[];
  tunnel?: TunnelMark;
}

/**
 * The named counters of the drops of pods' packets, by why they drop (the metric's
 * reason): `nft list counters` reads them without the rest of the table.
 */
export const POD_DROPS = { ipip: "pod-ipip", vxlan: "pod-vxlan", spoofed_source: "pod-spoofed-source" } as const;
export type PodDrop = keyof typeof POD_DROPS;
export type PodDrops = Record<PodDrop, number>;
export const noPodDrops = (): PodDrops => ({ ipip: 0, vxlan: 0, spoofed_source: 0 });

/** Adds from's counts into to. */
export function addPodDrops(to: PodDrops, from: PodDrops): PodDrops {
  for (const r of Object.keys(from) as PodDrop[]) to[r] += from[r];
  return to;
}

/** The items of `nft -j` output; none when it is empty or not JSON. */
function nftItems<T>(json: string): T[] {
  try {
    return (JSON.parse(json || "{}") as { nftables?: T[] }).nftables ?? [];
  } catch {
    return [];
  }
}

export const hexMark = (mark: number) => `0x${(mark >>> 0).toString(16)}`;

interface Chain {
  name: string;
  /** Its type line (hook and priority). */
  hook: string;
  rules: string[];
}

/** The table's chains, each with its rules. */
function weftChains(t: WeftTable): Chain[] {
  const chains: Chain[] = [{ name: "postrouting", hook: "type nat hook postrouting priority srcnat; policy accept;", rules: ["ip saddr @masq-pools ip daddr != @all-pools masquerade"] }];
  if (t.tunnel) {
    const mark = hexMark(t.tunnel.mark);
    const port = t.tunnel.vxlanPort;
    // Before iptables' filter INPUT (priority 0), in either of its backends.
    chains.push({ name: "input", hook: "type filter hook input priority mangle; policy accept;", rules: [`ip protocol 4 ip saddr @nodes meta mark set meta mark or ${mark}`, `ip saddr @nodes udp dport ${port} meta mark set meta mark or ${mark}`] });
    // Before conntrack (-200) makes an entry for it.
    if (t.tunnel.sourceCheck !== false) chains.push({ name: "prerouting", hook: "type filter hook prerouting priority raw; policy accept;", rules: [`iifname "cali*" fib saddr . iif oif missing counter name "${POD_DROPS.spoofed_source}" drop comment "weft: a pod's packet with another's source"`] });
    // Ahead of iptables' filter FORWARD; a drop here is final whatever accepts later.
    chains.push({ name: "forward", hook: "type filter hook forward priority -5; policy accept;", rules: [`iifname "cali*" ip protocol 4 counter name "${POD_DROPS.ipip}" drop comment "weft: IPIP from a pod"`, `iifname "cali*" udp dport ${port} counter name "${POD_DROPS.vxlan}" drop comment "weft: VXLAN from a pod"`] });
  }
  return chains;
}

export function weftRuleset(t: WeftTable): string {
  const set = (name: string, items: string[], interval: boolean) =>
    `  set ${name} { type ipv4_addr;${interval ? " flags interval;" : ""}${items.length ? ` elements = { ${items.join(", ")} }` : ""} }`;
  // "add table" then "delete table": the table is replaced whole in one transaction.
  return [
    `table ip ${NFT_TABLE} {}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    set("masq-pools", t.masqPools, true),
    set("all-pools", t.allPools, true),
    ...(t.tunnel ? [set("nodes", t.tunnel.nodes, false), ...Object.values(POD_DROPS).map((c) => `  counter ${c} { }`)] : []),
    ...weftChains(t).flatMap((c) => [`  chain ${c.name} {`, `    ${c.hook}`, ...c.rules.map((r) => `    ${r}`), "  }"]),
    "}",
    "",
  ].join("\n");
}

/** Whether `nft -j list table ip weft` output has every chain of t with as many rules as it should. */
export function weftTableWhole(json: string, t: WeftTable): boolean {
  const items = nftItems<{ chain?: { name: string }; rule?: { chain: string } }>(json);
  return weftChains(t).every((c) => items.some((e) => e.chain?.name === c.name) && items.filter((e) => e.rule?.chain === c.name).length === c.rules.length);
}

async function nft(input: string): Promise<void> {
  const r = await command("nft", ["-f", "-"], input);
  if (!r.ok) throw new Error(`nft: ${r.stderr}`);
}

export function applyWeftTable(t: WeftTable): Promise<void> {
  return nft(weftRuleset(t));
}

/** Whether weft's table is in the kernel's ruleset, every chain of t in it with all its rules. */
export async function weftTableInstalled(t: WeftTable): Promise<boolean> {
  const r = await command("nft", ["-j", "list", "table", "ip", NFT_TABLE]);
  return r.ok && weftTableWhole(r.stdout, t);
}

export async function removeWeftTable(): Promise<void> {
  await nft(`table ip ${NFT_TABLE} {}\ndelete table ip ${NFT_TABLE}\n`);
}

/**
 * Base chains on a hook (forward or input) with a drop policy, other than iptables' own
 * FORWARD or INPUT (weft's chains are jumped to from there): from `nft -j list chains`
 * output. Such a chain drops what weft accepts in iptables, so the node names it.
 */
export function dropPolicyChains(json: string, hook: "forward" | "input"): string[] {
  const own = hook === "forward" ? "FORWARD" : "INPUT";
  return nftItems<{ chain?: { family: string; table: string; name: string; hook?: string; policy?: string } }>(json)
    .map((e) => e.chain)
    .filter((c): c is NonNullable<typeof c> => !!c && c.hook === hook && c.policy === "drop")
    .filter((c) => !(c.table === "filter" && c.name === own && (c.family === "ip" || c.family === "ip6")))
    .map((c) => `${c.family} ${c.table} ${c.name}`);
}

/** This host's nftables chains on a hook with a drop policy (none if nft cannot list them). */
export async function dropPolicyChainsOnHost(hook: "forward" | "input"): Promise<string[]> {
  const r = await command("nft", ["-j", "list", "chains"]);
  return r.ok ? dropPolicyChains(r.stdout, hook) : [];
}

/**
 * Packets the pod rules dropped, by why, from `nft -j list counters table ip weft`
 * output; nothing counted where a counter is missing.
 */
export function podDropCounts(json: string): PodDrops {
  const out = noPodDrops();
  for (const e of nftItems<{ counter?: { name?: string; packets?: number } }>(json)) {
    const kind = (Object.keys(POD_DROPS) as PodDrop[]).find((k) => POD_DROPS[k] === e.counter?.name);
    if (kind && typeof e.counter?.packets === "number") out[kind] += e.counter.packets;
  }
  return out;
}

/** Pods' packets dropped so far, by why (zeros without weft's table). */
export async function podDrops(): Promise<PodDrops> {
  const r = await command("nft", ["-j", "list", "counters", "table", "ip", NFT_TABLE]);
  return podDropCounts(r.ok ? r.stdout : "");
}
