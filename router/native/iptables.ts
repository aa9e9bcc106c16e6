// Pod traffic through the host's iptables FORWARD chain. Docker, and many host
// firewalls, set its policy to DROP, which drops every packet between a pod and weft0
// or the uplink. As Calico's cali-FORWARD does, weft accepts traffic from and to pod
// interfaces (cali*, as weft-cni names them) and its tunnel device in a chain of its
// own, jumped to from the top of FORWARD. Through the iptables command, so it lands in
// whichever backend (nf_tables or legacy) the host's own rules are in.
import { execFile } from "node:child_process";

export const FORWARD_CHAIN = "WEFT-FORWARD";
const JUMP = ["FORWARD", "-m", "comment", "--comment", "weft: pod traffic", "-j", FORWARD_CHAIN];

/** The rules of weft's chain, as `iptables -S` prints them. */
export function forwardRules(tunnelDevice: string): string[] {
  return [`-N ${FORWARD_CHAIN}`, ...[["-i", "cali+"], ["-o", "cali+"], ["-i", tunnelDevice], ["-o", tunnelDevice]].map(([dir, dev]) => `-A ${FORWARD_CHAIN} ${dir} ${dev} -j ACCEPT`)];
}

function iptables(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string; missing?: boolean }> {
  return new Promise((resolve) =>
    execFile("iptables", ["-w", "5", ...args], (err, stdout, stderr) =>
      resolve({ ok: !err, stdout, stderr: stderr.trim() || (err?.message ?? ""), missing: (err as NodeJS.ErrnoException | null)?.code === "ENOENT" }),
    ),
  );
}

/** Whether this host has the iptables command (without it there is no FORWARD chain to mind). */
export async function iptablesPresent(): Promise<boolean> {
  return !(await iptables(["-V"])).missing;
}

/** Whether weft's chain holds exactly its rules and FORWARD jumps to it. */
export async function forwardAcceptInstalled(tunnelDevice: string): Promise<boolean> {
  const chain = await iptables(["-S", FORWARD_CHAIN]);
  if (!chain.ok || chain.stdout.trim() !== forwardRules(tunnelDevice).join("\n")) return false;
  return (await iptables(["-C", ...JUMP])).ok;
}

/** Makes weft's chain hold its rules and FORWARD jump to it first. */
export async function installForwardAccept(tunnelDevice: string): Promise<void> {
  const must = async (args: string[]) => {
    const r = await iptables(args);
    if (!r.ok) throw new Error(`iptables ${args.join(" ")}: ${r.stderr}`);
  };
  if (!(await iptables(["-S", FORWARD_CHAIN])).ok) await must(["-N", FORWARD_CHAIN]);
  await must(["-F", FORWARD_CHAIN]);
  for (const rule of forwardRules(tunnelDevice).slice(1)) await must(rule.split(" "));
  if (!(await iptables(["-C", ...JUMP])).ok) await must(["-I", ...JUMP.slice(0, 1), "1", ...JUMP.slice(1)]);
}

/** Removes the jump and the chain (node reset); nothing there is fine. */
export async function removeForwardAccept(): Promise<void> {
  while ((await iptables(["-D", ...JUMP])).ok);
  await iptables(["-F", FORWARD_CHAIN]);
  await iptables(["-X", FORWARD_CHAIN]);
}
