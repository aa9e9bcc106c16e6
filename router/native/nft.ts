// natOutgoing through nftables: masquerade traffic from a pool with natOutgoing to
// any destination outside every pool (Calico's masq-pools / all-pools rule).
import { command } from "./command.js";

export const NFT_TABLE = "weft";

export function natRuleset(masqPools: string[], allPools: string[]): string {
  const set = (name: string, cidrs: string[]) =>
    `  set ${name} { type ipv4_addr; flags interval;${cidrs.length ? ` elements = { ${cidrs.join(", ")} }` : ""} }`;
  // "add table" then "delete table": the table is replaced whole in one transaction.
  return [
    `table ip ${NFT_TABLE} {}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    set("masq-pools", masqPools),
    set("all-pools", allPools),
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    "    ip saddr @masq-pools ip daddr != @all-pools masquerade",
    "  }",
    "}",
    "",
  ].join("\n");
}

async function nft(input: string): Promise<void> {
  const r = await command("nft", ["-f", "-"], input);
  if (!r.ok) throw new Error(`nft: ${r.stderr}`);
}

export function applyNatOutgoing(masqPools: string[], allPools: string[]): Promise<void> {
  return nft(natRuleset(masqPools, allPools));
}

/** Whether weft's table is in the kernel's ruleset. */
export async function natOutgoingInstalled(): Promise<boolean> {
  return (await command("nft", ["list", "table", "ip", NFT_TABLE])).ok;
}

export async function removeNatOutgoing(): Promise<void> {
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
