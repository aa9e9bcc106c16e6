// What weft needs let through the host's iptables filter table, in chains of its own
// jumped to from the top of FORWARD and INPUT (as Calico's cali-FORWARD and cali-INPUT):
// - WEFT-FORWARD: traffic from and to pod interfaces (cali*, as weft-cni names them) and
//   the tunnel device. Docker, and many host firewalls, set FORWARD's policy to DROP,
//   which would drop every packet between a pod and weft0 or the uplink.
// - WEFT-INPUT: IPIP and VXLAN from the cluster's nodes (and from nowhere else), which an
//   INPUT policy of DROP would keep from weft's sockets. Which packets those are, weft's
//   nftables table decides with a set lookup and marks (nft.ts); this chain is one rule
//   on the mark, the same whatever the number of nodes.
// Through the iptables commands, so the rules land in whichever backend (nf_tables or
// legacy) the host's own rules are in; each chain is replaced whole in one
// iptables-restore transaction.
import { command } from "./command.js";
import { hexMark } from "./nft.js";

/** One of weft's chains, and the built-in chain that jumps to it first. */
interface Chain {
  chain: "WEFT-FORWARD" | "WEFT-INPUT";
  from: "FORWARD" | "INPUT";
  comment: string;
}
const FORWARD: Chain = { chain: "WEFT-FORWARD", from: "FORWARD", comment: "weft: pod traffic" };
const INPUT: Chain = { chain: "WEFT-INPUT", from: "INPUT", comment: "weft: tunnel traffic from nodes" };

export interface ChainSpec extends Chain {
  /** Each rule's arguments after -A CHAIN. */
  rules: string[][];
}

export function forwardSpec(tunnelDevice: string): ChainSpec {
  const rules = [["-i", "cali+"], ["-o", "cali+"], ["-i", tunnelDevice], ["-o", tunnelDevice]].map((r) => [...r, "-j", "ACCEPT"]);
  return { ...FORWARD, rules };
}

/** What weft's nftables table marked as IPIP or VXLAN from a node (one bit, mark). */
export function inputSpec(mark: number): ChainSpec {
  return { ...INPUT, rules: [["-m", "mark", "--mark", `${hexMark(mark)}/${hexMark(mark)}`, "-j", "ACCEPT"]] };
}

const jump = (s: Chain) => [s.from, "-m", "comment", "--comment", s.comment, "-j", s.chain];

const iptables = (args: string[]) => command("iptables", ["-w", "5", ...args]);

/** Whether this host has the iptables command (without it there are no such chains to mind). */
export async function iptablesPresent(): Promise<boolean> {
  return !(await iptables(["-V"])).missing;
}

/** Whether the chain holds as many rules as it should (a flush leaves none) and is jumped to. */
export async function chainInstalled(s: ChainSpec): Promise<boolean> {
  const listed = await iptables(["-S", s.chain]);
  if (!listed.ok || listed.stdout.trim().split("\n").length !== s.rules.length + 1) return false;
  return (await iptables(["-C", ...jump(s)])).ok;
}

/** Replaces the chain's rules in one transaction and makes its built-in chain jump to it first. */
export async function installChain(s: ChainSpec): Promise<void> {
  const restore = ["*filter", `:${s.chain} - [0:0]`, ...s.rules.map((r) => `-A ${s.chain} ${r.join(" ")}`), "COMMIT", ""].join("\n");
  const r = await command("iptables-restore", ["-w", "5", "--noflush"], restore);
  if (!r.ok) throw new Error(`iptables-restore (${s.chain}): ${r.stderr}`);
  const j = jump(s);
  if (!(await iptables(["-C", ...j])).ok) {
    const ins = await iptables(["-I", j[0], "1", ...j.slice(1)]);
    if (!ins.ok) throw new Error(`iptables -I ${j.join(" ")}: ${ins.stderr}`);
  }
}

/** Removes weft's jumps and chains (node reset); nothing there is fine. */
export async function removeChains(): Promise<void> {
  for (const s of [FORWARD, INPUT]) {
    while ((await iptables(["-D", ...jump(s)])).ok);
    await iptables(["-F", s.chain]);
    await iptables(["-X", s.chain]);
  }
}
