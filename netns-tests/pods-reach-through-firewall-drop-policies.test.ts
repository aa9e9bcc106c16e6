// Hosts whose iptables FORWARD policy is DROP, as Docker leaves it, and whose INPUT
// policy is DROP with only established traffic and BGP let in, as a host firewall
// (ufw's "deny incoming") leaves it: pods still reach each other, because each node
// accepts pod traffic (cali* and weft0) in WEFT-FORWARD and IPIP/VXLAN from the
// cluster's nodes in WEFT-INPUT, chains of its own jumped to first (as Calico's
// cali-FORWARD and cali-INPUT). Which packets come from a node, weft's nftables table
// says with a set lookup and a mark bit, so WEFT-INPUT is one rule however many nodes
// there are. Without the FORWARD jump the policy drops pod traffic; removed by someone
// else, it is back at the node's next 30 s check; `weft node reset` takes both chains
// away. worker-2 also has a firewall of nftables' own (input policy drop, as firewalld
// or a hand-written ruleset), which no iptables accept overrides: its node names that
// chain, and the one rule it suggests (accept weft's mark) takes the tunnel traffic
// there (its counter grows with pod traffic; conntrack's "established" would take it
// after the first exchange, not before). A DROP policy loaded through iptables-legacy
// (an older Docker, a kube-proxy image) beside the nf_tables backend drops pod traffic
// whatever nf_tables accepts: the nodes put their chains in legacy too, when it holds rules.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import type { Lab } from "../router/lab/lab.js";

const inject = () => path.join(projectRoot(), "dist", "router", "lab", "inject.js");

/** pod-1 -> pod-2, one TCP stream for 3 s: receiver Gbit/s. */
async function gbits(lab: Lab): Promise<number> {
  await lab.exec("pod-2", ["iperf3", "-s", "-1", "-D", "-p", "5202"]);
  await new Promise((r) => setTimeout(r, 300));
  const out = JSON.parse(await lab.exec("pod-1", ["iperf3", "-c", lab.podAddress("pod-2"), "-p", "5202", "-t", "3", "-J"], { timeoutMs: 30_000 })) as { end: { sum_received: { bits_per_second: number } } };
  return out.end.sum_received.bits_per_second / 1e9;
}

const HOSTS = ["master", "worker-1", "worker-2", "worker-3"];
const HOSTFW = `table inet hostfw {
  chain input {
    type filter hook input priority filter; policy drop;
    meta mark & 0x10000 == 0x10000 counter accept comment "weft's tunnel traffic"
    ct state established,related accept
    iif lo accept
    tcp dport 179 accept
  }
}
`;
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
      writeFileSync(path.join(l.dir, "hostfw.nft"), HOSTFW);
      await l.exec("worker-2", ["nft", "-f", path.join(l.dir, "hostfw.nft")]);
      await l.restartNode("worker-2");
      // Its node forwards again once it has read the datastore: wait for that, not for BGP.
      for (const other of ["pod-1", "pod-3"]) await waitFor(`pod-2 reaching ${other} after worker-2's restart`, () => l.ping("pod-2", l.podAddress(other), { timeoutS: 1 }), 30_000);
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
    expect(weftInput.trim().split("\n")).toEqual(["-N WEFT-INPUT", "-A WEFT-INPUT -m mark --mark 0x10000/0x10000 -j ACCEPT"]);
    const table = await lab.exec("worker-1", ["nft", "list", "table", "ip", "weft"]);
    console.log(`[tfwd] worker-1 nftables table weft:\n${table}`);
    const nodes = /set nodes \{[^}]*elements = \{([^}]*)\}/.exec(table)?.[1].split(",").map((a) => a.trim()).sort();
    expect(nodes).toEqual(["10.30.0.10", "10.30.0.12", "10.30.1.13"]);
    expect(table).toMatch(/hook input priority mangle/);
    const matrix = await lab.reachability();
    expect(Object.values(matrix).flatMap((row) => Object.values(row)).every(Boolean), JSON.stringify(matrix)).toBe(true);
  });

  it("worker-2's nftables firewall: its node names the chain and the rule to add; that rule takes the tunnel traffic to worker-2's pod", async () => {
    const log = await lab.exec("worker-2", ["cat", path.join(lab.dir, "worker-2.log")]);
    const warning = log.split("\n").find((l) => l.includes("drops input by policy"));
    console.log(`[tfwd] worker-2 warned: ${warning ? JSON.parse(warning).msg : "nothing"}`);
    expect(warning).toContain("nftables chain inet hostfw input drops input by policy");
    expect(warning).toContain("meta mark & 0x10000 == 0x10000 accept");
    const accepted = async () => Number(/counter packets (\d+) bytes \d+ accept comment "weft's tunnel traffic"/.exec(await lab.exec("worker-2", ["nft", "list", "chain", "inet", "hostfw", "input"]))?.[1]);
    const before = await accepted();
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"), { count: 3 })).toBe(true);
    const after = await accepted();
    console.log(`[tfwd] worker-2's firewall accepted ${after - before} tunnel packets on weft's mark during 3 pings pod-1 -> pod-2`);
    expect(after - before).toBeGreaterThanOrEqual(3);
  });

  it("IPIP from a host that is not a node gets no mark: the INPUT policy drops it before weft's socket sees it", async () => {
    const before = await lab.counters("worker-1");
    const sent = JSON.parse(await lab.exec("gw", [process.execPath, inject(), "ipip", "10.30.0.1", "10.30.0.11", "10.99.0.1", lab.podAddress("pod-1"), "20"]));
    expect(sent.sent).toBe(20);
    await new Promise((r) => setTimeout(r, 300));
    const after = await lab.counters("worker-1");
    const seen = after.drop_unknown_source - before.drop_unknown_source;
    console.log(`[tfwd] 20 IPIP packets from the gateway: ${seen} reached worker-1's node, ${after.tun_tx - before.tun_tx} delivered`);
    expect(seen).toBe(0);
    expect(after.tun_tx - before.tun_tx).toBe(0);
  });

  it("a thousand nodes' addresses in the set: WEFT-INPUT stays one rule and pods still reach each other (IPIP throughput printed with and without them)", async () => {
    const few = await gbits(lab);
    const extra = Array.from({ length: 1000 }, (_, i) => `10.99.${i >> 8}.${i & 255}`);
    for (const h of ["worker-1", "worker-2"]) await lab.exec(h, ["nft", `add element ip weft nodes { ${extra.join(", ")} }`]);
    const many = await gbits(lab);
    console.log(`[tfwd] IPIP pod-1 -> pod-2 through WEFT-INPUT: ${few.toFixed(2)} Gbit/s with 3 nodes in the set, ${many.toFixed(2)} with 1003 (${(many / few).toFixed(2)}x)`);
    expect((await lab.exec("worker-2", ["iptables", "-S", "WEFT-INPUT"])).trim().split("\n")).toHaveLength(2);
    expect(many).toBeGreaterThan(0);
  }, 60_000);

  it("without the jump the policy drops pod traffic; the node puts it back at its next check", async () => {
    await lab.exec("worker-1", ["iptables", "-D", ...JUMP]);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 })).toBe(false);
    const ms = await waitFor("the jump back on worker-1", async () => (await lab.exec("worker-1", ["iptables", "-C", ...JUMP]).then(() => true, () => false)) && lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 }), 45_000);
    console.log(`[tfwd] jump deleted on worker-1: back, and pod-1 reaches pod-2 again, after ${ms} ms`);
  }, 60_000);

  it("a FORWARD DROP policy loaded through iptables-legacy under running nodes (an older Docker, a kube-proxy image): pods cut off until each node's check puts its chains there too (SIGHUP here: at once)", async () => {
    for (const h of ["worker-1", "worker-3"]) await lab.exec(h, ["iptables-legacy", "-P", "FORWARD", "DROP"]);
    // A packet passes both backends' hooks: the accept in nf_tables does not get it through legacy's policy.
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"), { timeoutS: 1 })).toBe(false);
    for (const h of ["worker-1", "worker-3"]) lab.signalNode(h, "SIGHUP");
    const ms = await waitFor("pod-1 reaching pod-3 through both backends' DROP policies", () => lab.ping("pod-1", lab.podAddress("pod-3"), { timeoutS: 1 }), 15_000);
    const legacy = await lab.exec("worker-1", ["iptables-legacy", "-S"]);
    console.log(`[tfwd] FORWARD DROP in iptables-legacy on worker-1 and worker-3: pod-1 reached pod-3 ${ms} ms after SIGHUP; worker-1's legacy rules:\n${legacy}`);
    expect(legacy).toContain('-A FORWARD -m comment --comment "weft: pod traffic" -j WEFT-FORWARD');
    expect(legacy).toContain("-A WEFT-FORWARD -i cali+ -j ACCEPT");
    expect(await lab.exec("worker-1", ["cat", path.join(lab.dir, "worker-1.log")])).toContain("iptables-legacy holds filter rules on this host too");
    // A host with no legacy rules gets none from weft (listing them would make its table).
    expect(await lab.exec("worker-2", ["iptables-legacy-save"])).toBe("");
  }, 30_000);

  it("weft node reset removes the chains and the jumps, from both backends", async () => {
    await lab.stopNode("worker-3");
    await lab.exec("worker-3", [process.execPath, lab.cli(), "node", "reset"]);
    const left = await lab.exec("worker-3", ["iptables", "-S"]);
    const legacy = await lab.exec("worker-3", ["iptables-legacy", "-S"]);
    console.log(`[tfwd] worker-3 after reset:\n${left}legacy:\n${legacy}`);
    expect(left).not.toMatch(/WEFT-(FORWARD|INPUT)/);
    expect(legacy).not.toMatch(/WEFT-(FORWARD|INPUT)/);
  }, 30_000);
});
