// What weft needs let through the host's iptables filter table, in chains of its own
// jumped to from the top of FORWARD and INPUT (as Calico's cali-FORWARD and cali-INPUT):
// - WEFT-FORWARD: traffic from and to pod interfaces (cali*, as weft-cni names them) and
//   the tunnel device. Docker, and many host firewalls, set FORWARD's policy to DROP,
//   which would drop every packet between a pod and weft0 or the uplink.
// - WEFT-INPUT: IPIP and VXLAN from the cluster's nodes (and from nowhere else), which an
//   INPUT policy of DROP would keep from weft's sockets. Which packets those are, weft's
//   nftables table decides with a set lookup and marks (nft.ts); this chain is one rule
//   on the mark, the same whatever the number of nodes.
// Through the iptables commands: the backend the iptables command uses (nf_tables or
// legacy), and the other one as well when it holds a filter table. A packet passes the
// hooks of both, so a DROP policy loaded through iptables-legacy (an older Docker, a
// kube-proxy image) drops pod traffic that an accept in nf_tables let through. Each
// chain is replaced whole in one iptables-restore transaction.
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

/** One iptables backend, through its commands. */
export interface Backend {
  name: "nf_tables" | "legacy";
  /** The iptables command's own backend (the host's choice); else the other one, which also holds rules. */
  primary: boolean;
  iptables: string;
  restore: string;
}

const OTHER = {
  nf_tables: { name: "legacy", iptables: "iptables-legacy", restore: "iptables-legacy-restore", save: "iptables-legacy-save" },
  legacy: { name: "nf_tables", iptables: "iptables-nft", restore: "iptables-nft-restore", save: "iptables-nft-save" },
} as const;

const run = (b: Pick<Backend, "iptables">, args: string[]) => command(b.iptables, ["-w", "5", ...args]);
const PRIMARY = { iptables: "iptables", restore: "iptables-restore" };
let version: ReturnType<typeof command> | undefined;

/** The backend `iptables -V` names: "iptables v1.8.9 (nf_tables)"; before 1.8 there was only legacy. */
export function backendOf(version: string): Backend["name"] {
  return /\(nf_tables\)/.test(version) ? "nf_tables" : "legacy";
}

/**
 * The backends weft's chains go in: the iptables command's, and the other when its
 * filter table exists (listed by its save command, which, unlike a listing of the
 * table, does not make one). Empty without an iptables command.
 */
export async function iptablesBackends(): Promise<Backend[]> {
  // Which backend the command uses is asked once (installing iptables later takes a restart).
  const v = await (version ??= run(PRIMARY, ["-V"]));
  if (v.missing) return [];
  const name = backendOf(v.stdout);
  const backends: Backend[] = [{ name, primary: true, ...PRIMARY }];
  const other = OTHER[name];
  const saved = await command(other.save, []);
  if (saved.ok && /^\*filter$/m.test(saved.stdout)) backends.push({ name: other.name, primary: false, iptables: other.iptables, restore: other.restore });
  return backends;
}

/** Whether the chain holds as many rules as it should (a flush leaves none) and is jumped to. */
export async function chainInstalled(s: ChainSpec, b: Backend): Promise<boolean> {
  const listed = await run(b, ["-S", s.chain]);
  if (!listed.ok || listed.stdout.trim().split("\n").length !== s.rules.length + 1) return false;
  return (await run(b, ["-C", ...jump(s)])).ok;
}

/** Replaces the chain's rules in one transaction and makes its built-in chain jump to it first. */
export async function installChain(s: ChainSpec, b: Backend): Promise<void> {
  const restore = ["*filter", `:${s.chain} - [0:0]`, ...s.rules.map((r) => `-A ${s.chain} ${r.join(" ")}`), "COMMIT", ""].join("\n");
  const r = await command(b.restore, ["-w", "5", "--noflush"], restore);
  if (!r.ok) throw new Error(`${b.restore} (${s.chain}): ${r.stderr}`);
  const j = jump(s);
  if (!(await run(b, ["-C", ...j])).ok) {
    const ins = await run(b, ["-I", j[0], "1", ...j.slice(1)]);
    if (!ins.ok) throw new Error(`${b.iptables} -I ${j.join(" ")}: ${ins.stderr}`);
  }
}

/** Removes weft's jumps and chains from each backend in use (node reset); nothing there is fine. */
export async function removeChains(): Promise<void> {
  for (const b of await iptablesBackends()) {
    for (const s of [FORWARD, INPUT]) {
      while ((await run(b, ["-D", ...jump(s)])).ok);
      await run(b, ["-F", s.chain]);
      await run(b, ["-X", s.chain]);
    }
  }
}
