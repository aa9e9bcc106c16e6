// weft's own nftables table, `ip weft`, replaced whole in one transaction:
// - natOutgoing: masquerade traffic from a pool with natOutgoing to any destination
//   outside every pool (Calico's masq-pools / all-pools rule);
// - the tunnel mark: IPIP and VXLAN from the cluster's nodes get one bit of the packet
//   mark before iptables' filter table sees them, so WEFT-INPUT accepts them with one
//   rule on that bit. The nodes are a hashed set, looked up once per packet whatever
//   their number (a rule per node, as WEFT-INPUT had, is walked packet by packet:
//   with 500 nodes it cut IPIP to a quarter).
import { command } from "./command.js";

export const NFT_TABLE = "weft";

/** The lowest bit of Calico's default iptablesMarkMask, 0xffff0000. */
export const DEFAULT_TUNNEL_MARK = 0x10000;

/** Who gets the tunnel mark: IPIP, and UDP to vxlanPort, from these node addresses. */
export interface TunnelMark {
  nodes: string[];
  mark: number;
  vxlanPort: number;
}

export interface WeftTable {
  masqPools: string[];
  allPools: string[];
  tunnel?: TunnelMark;
}

export const hexMark = (mark: number) => `0x${(mark >>> 0).toString(16)}`;

export function weftRuleset(t: WeftTable): string {
  const set = (name: string, items: string[], interval: boolean) =>
    `  set ${name} { type ipv4_addr;${interval ? " flags interval;" : ""}${items.length ? ` elements = { ${items.join(", ")} }` : ""} }`;
  const tunnel = t.tunnel
    ? [
        set("nodes", t.tunnel.nodes, false),
        "  chain input {",
        // Before iptables' filter INPUT (priority 0), in either of its backends.
        "    type filter hook input priority mangle; policy accept;",
        `    ip protocol 4 ip saddr @nodes meta mark set meta mark or ${hexMark(t.tunnel.mark)}`,
        `    ip saddr @nodes udp dport ${t.tunnel.vxlanPort} meta mark set meta mark or ${hexMark(t.tunnel.mark)}`,
        "  }",
      ]
    : [];
  // "add table" then "delete table": the table is replaced whole in one transaction.
  return [
    `table ip ${NFT_TABLE} {}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    set("masq-pools", t.masqPools, true),
    set("all-pools", t.allPools, true),
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    "    ip saddr @masq-pools ip daddr != @all-pools masquerade",
    "  }",
    ...tunnel,
    "}",
    "",
  ].join("\n");
}

async function nft(input: string): Promise<void> {
  const r = await command("nft", ["-f", "-"], input);
  if (!r.ok) throw new Error(`nft: ${r.stderr}`);
}

export function applyWeftTable(t: WeftTable): Promise<void> {
  return nft(weftRuleset(t));
}

/** Whether weft's table is in the kernel's ruleset. */
export async function weftTableInstalled(): Promise<boolean> {
  return (await command("nft", ["list", "table", "ip", NFT_TABLE])).ok;
}

export async function removeWeftTable(): Promise<void> {
  await nft(`table ip ${NFT_TABLE} {}\ndelete table ip ${NFT_TABLE}\n`);
}

/**
 * Base chains on the forward hook with a drop policy, other than iptables' own FORWARD
 * (weft's WEFT-FORWARD is jumped to from there): from `nft -j list chains` output. Such a
 * chain drops pod traffic whatever weft accepts elsewhere, so the node names it.
 */
export function dropPolicyForwardChains(json: string): string[] {
  const doc = JSON.parse(json || "{}") as { nftables?: Array<{ chain?: { family: string; table: string; name: string; hook?: string; policy?: string } }> };
  return (doc.nftables ?? [])
    .map((e) => e.chain)
    .filter((c): c is NonNullable<typeof c> => !!c && c.hook === "forward" && c.policy === "drop")
    .filter((c) => !(c.table === "filter" && c.name === "FORWARD" && (c.family === "ip" || c.family === "ip6")))
    .map((c) => `${c.family} ${c.table} ${c.name}`);
}

/** This host's nftables forward chains with a drop policy (none if nft cannot list them). */
export async function forwardDropChains(): Promise<string[]> {
  const r = await command("nft", ["-j", "list", "chains"]);
  return r.ok ? dropPolicyForwardChains(r.stdout) : [];
}
