// ICMP answers from the fast path: fragmentation needed with the tunnel MTU for an
// oversized DF packet, net unreachable for a destination weft has no route for.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { podVeth } from "../router/lab/lab.js";

describe("ICMP errors written back by weft", () => {
  const lab = useLab("ticmp", "ipip");

  it("an oversized DF packet gets fragmentation-needed carrying the IPIP tunnel MTU (1480)", async () => {
    // Let 1500-byte packets reach weft0 (as a misconfigured MTU would) so weft must answer.
    await lab.exec("worker-1", ["ip", "link", "set", "weft0", "mtu", "1500"]);
    await lab.exec("worker-1", ["ip", "link", "set", podVeth("pod-1"), "mtu", "1500"]);
    await lab.exec("pod-1", ["ip", "link", "set", "eth0", "mtu", "1500"]);
    const out = await lab.exec("pod-1", ["sh", "-c", "ping -n -c 2 -i 0.2 -W 2 -M do -s 1472 192.168.133.194 2>&1 || true"]);
    const c = await lab.counters("worker-1");
    console.log(`[ticmp] ping -M do -s 1472: ${out.split("\n").find((l) => /mtu|Frag/i.test(l))?.trim()}; icmp_frag_needed_sent=${c.icmp_frag_needed_sent}`);
    expect(c.icmp_frag_needed_sent).toBeGreaterThanOrEqual(1);
    // The pod's kernel learned the path MTU from weft's answer.
    const route = await lab.exec("pod-1", ["ip", "route", "get", "192.168.133.194"]);
    expect(route).toMatch(/mtu 1480/);
    // And a packet that fits still goes through.
    expect(await lab.ping("pod-1", "192.168.133.194", { size: 1452, df: true })).toBe(true);
  });

  it("a packet weft has no route for gets ICMP net unreachable from the node", async () => {
    await lab.exec("worker-1", ["ip", "route", "add", "192.168.250.0/24", "dev", "weft0"]);
    const out = await lab.exec("pod-1", ["ping", "-n", "-c", "1", "-W", "2", "192.168.250.1"], { allowFail: true });
    const raw = await lab.exec("pod-1", ["sh", "-c", "ping -n -c 1 -W 2 192.168.250.1 2>&1 || true"]);
    console.log(`[ticmp] ping 192.168.250.1: ${raw.split("\n").find((l) => /Unreachable/i.test(l))?.trim()}`);
    expect(out).toBe("");
    expect(raw).toMatch(/From 10\.30\.0\.11 .*Destination Net Unreachable/);
    expect((await lab.counters("worker-1")).icmp_unreachable_sent).toBeGreaterThanOrEqual(1);
  });

  it("a static node on a host with reverse-path filtering (rp_filter 2, Ubuntu's default) says at start that the kernel drops these answers, and it does; with 0 they arrive (a node on a datastore sends them from its tunnel address: strict-rp-filter-hosts-pods-learn-path-mtu)", async () => {
    await lab.exec("worker-1", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2"]);
    await lab.restartNode("worker-1");
    const log = await lab.exec("worker-1", ["tail", "-n", "30", path.join(lab.dir, "worker-1.log")]);
    expect(log).toMatch(/reverse-path filtering \(net\.ipv4\.conf\.all\.rp_filter = 2: loose, Ubuntu's default\) drops the ICMP errors weft writes into weft0 from this node's address.*Set it to 0/);
    await lab.exec("worker-1", ["ip", "route", "replace", "192.168.250.0/24", "dev", "weft0"]);
    const raw = await lab.exec("pod-1", ["sh", "-c", "ping -n -c 1 -W 2 192.168.250.1 2>&1 || true"]);
    console.log(`[ticmp] with rp_filter 2 on worker-1, ping 192.168.250.1: ${raw.split("\n").filter(Boolean).slice(-2).join(" / ")}`);
    expect(raw).not.toMatch(/Unreachable/);
    expect((await lab.counters("worker-1")).icmp_unreachable_sent).toBeGreaterThanOrEqual(1);
    await lab.exec("worker-1", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
    expect(await lab.exec("pod-1", ["sh", "-c", "ping -n -c 1 -W 2 192.168.250.1 2>&1 || true"])).toMatch(/Destination Net Unreachable/);
  });
});
