// Hosts whose iptables FORWARD policy is DROP, as Docker leaves it, and whose INPUT
// policy is DROP with only established traffic and BGP let in, as a host firewall
// (ufw's "deny incoming") leaves it: pods still reach each other, because each node
// accepts pod traffic (cali* and weft0) in WEFT-FORWARD and IPIP/VXLAN from the
// cluster's nodes in WEFT-INPUT, chains of its own jumped to first (as Calico's
// cali-FORWARD and cali-INPUT). Without the FORWARD jump the policy drops pod traffic;
// removed by someone else, it is back at the node's next 30 s check; `weft node reset`
// takes both chains away.
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

const HOSTS = ["master", "worker-1", "worker-2", "worker-3"];
const JUMP = ["FORWARD", "-m", "comment", "--comment", "weft: pod traffic", "-j", "WEFT-FORWARD"];

describe("pods behind FORWARD and INPUT DROP policies", () => {
  const lab = useLab("tfwd", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      for (const h of HOSTS) {
        await l.exec(h, ["iptables", "-P", "FORWARD", "DROP"]);
        await l.exec(h, ["iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]);
        await l.exec(h, ["iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"]);
        await l.exec(h, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "179", "-j", "ACCEPT"]);
        await l.exec(h, ["iptables", "-P", "INPUT", "DROP"]);
      }
    },
  });

  it("reach every other pod: the node's chains are jumped to before the policies", async () => {
    const forward = await lab.exec("worker-1", ["iptables", "-S", "FORWARD"]);
    const input = await lab.exec("worker-1", ["iptables", "-S", "INPUT"]);
    const weftInput = await lab.exec("worker-1", ["iptables", "-S", "WEFT-INPUT"]);
    console.log(`[tfwd] worker-1 FORWARD:\n${forward}${await lab.exec("worker-1", ["iptables", "-S", "WEFT-FORWARD"])}INPUT:\n${input}${weftInput}`);
    expect(forward.split("\n")[0]).toBe("-P FORWARD DROP");
    expect(forward.split("\n")[1]).toBe('-A FORWARD -m comment --comment "weft: pod traffic" -j WEFT-FORWARD');
    expect(input.split("\n")[1]).toBe('-A INPUT -m comment --comment "weft: tunnel traffic from nodes" -j WEFT-INPUT');
    for (const other of ["10.30.0.10", "10.30.0.12", "10.30.1.13"]) {
      expect(weftInput).toContain(`-A WEFT-INPUT -s ${other}/32 -p ipencap -j ACCEPT`);
      expect(weftInput).toContain(`-A WEFT-INPUT -s ${other}/32 -p udp -m udp --dport 4789 -j ACCEPT`);
    }
    expect(weftInput).not.toContain("10.30.0.11/32");
    const matrix = await lab.reachability();
    expect(Object.values(matrix).flatMap((row) => Object.values(row)).every(Boolean), JSON.stringify(matrix)).toBe(true);
  });

  it("without the jump the policy drops pod traffic; the node puts it back at its next check", async () => {
    await lab.exec("worker-1", ["iptables", "-D", ...JUMP]);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 })).toBe(false);
    const ms = await waitFor("the jump back on worker-1", async () => (await lab.exec("worker-1", ["iptables", "-C", ...JUMP]).then(() => true, () => false)) && lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 }), 45_000);
    console.log(`[tfwd] jump deleted on worker-1: back, and pod-1 reaches pod-2 again, after ${ms} ms`);
  }, 60_000);

  it("weft node reset removes the chains and the jumps", async () => {
    await lab.stopNode("worker-3");
    await lab.exec("worker-3", [process.execPath, lab.cli(), "node", "reset"]);
    const left = await lab.exec("worker-3", ["iptables", "-S"]);
    console.log(`[tfwd] worker-3 after reset:\n${left}`);
    expect(left).not.toMatch(/WEFT-(FORWARD|INPUT)/);
  }, 30_000);
});
