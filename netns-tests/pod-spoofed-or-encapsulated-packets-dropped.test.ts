// A pod that sends IPIP or VXLAN to another node's address: natOutgoing would
// masquerade it to its own node's address, and the other node would take it as tunnel
// traffic from a node and deliver what it carries, spoofed source and all (here: a ping
// "from pod-3" to pod-2, made in pod-1). weft drops such packets as they leave a pod
// (Calico's "Drop IPinIP/VXLAN encapped packets originating in workloads") and counts
// them; pods' other traffic to the nodes is untouched. The same ping sent plainly, its
// source another pod's, is dropped and counted too (strict reverse-path check on cali*
// in weft's table; with no rp_filter anywhere, as before, all 5 reached pod-2).
import path from "node:path";
import { describe, expect, it } from "vitest";
import { background, useLab, waitFor } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import { vtepMAC } from "../router/dataplane/vtep.js";

const inject = () => path.join(projectRoot(), "dist", "router", "lab", "inject.js");
const WORKER2 = "10.30.0.12";

describe("IPIP and VXLAN sent by a pod", () => {
  const lab = useLab("tpenc", "ipip", { datastore: "sqlite" });

  const dropped = async () => {
    const m = await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "metrics", "--control", lab.controlSocket("worker-1")]);
    const read = (p: string) => Number(new RegExp(`^weft_pod_packets_dropped_total\\{reason="${p}"\\} (\\d+)$`, "m").exec(m)?.[1] ?? NaN);
    return { ipip: read("ipip"), vxlan: read("vxlan"), spoofed_source: read("spoofed_source") };
  };

  for (const kind of ["ipip", "vxlan"] as const) {
    it(`${kind.toUpperCase()} from pod-1 to worker-2, carrying a ping "from pod-3" to pod-2: dropped on worker-1 and counted, pod-2 sees nothing`, async () => {
      const [pod1, pod2, pod3] = ["pod-1", "pod-2", "pod-3"].map((p) => lab.podAddress(p));
      const before = await dropped();
      const watch = background(lab, "pod-2", ["tshark", "-n", "-i", "eth0", "-f", `icmp and src host ${pod3}`, "-a", "duration:4", "-T", "fields", "-e", "ip.src"], /Capture started/);
      await watch.ready;
      const args = kind === "ipip" ? ["ipip", pod1, WORKER2, pod3, pod2, "5"] : ["vxlan", WORKER2, vtepMAC("worker-2"), pod3, pod2, "5"];
      expect(JSON.parse(await lab.exec("pod-1", [process.execPath, inject(), ...args])).sent).toBe(5);
      const seen = (await watch.done).trim();
      const after = await dropped();
      console.log(`[tpenc] ${kind}: 5 sent by pod-1 to worker-2; dropped on worker-1 ${after[kind] - before[kind]}; seen in pod-2 ${seen ? seen.split("\n").length : 0}`);
      expect(seen).toBe("");
      expect(after[kind] - before[kind]).toBe(5);
    });
  }

  it('a plain ping made in pod-1 "from pod-3" to pod-2: dropped on worker-1 and counted, pod-2 sees nothing; pod-1\'s own pings still go', async () => {
    const [pod2, pod3] = ["pod-2", "pod-3"].map((p) => lab.podAddress(p));
    const before = await dropped();
    const watch = background(lab, "pod-2", ["tshark", "-n", "-i", "eth0", "-f", `icmp and src host ${pod3}`, "-a", "duration:4", "-T", "fields", "-e", "ip.src"], /Capture started/);
    await watch.ready;
    expect(JSON.parse(await lab.exec("pod-1", [process.execPath, inject(), "echo", pod3, pod2, "5"])).sent).toBe(5);
    const seen = (await watch.done).trim();
    const after = await dropped();
    console.log(`[tpenc] spoofed source: 5 sent by pod-1 as pod-3; dropped on worker-1 ${after.spoofed_source - before.spoofed_source}; seen in pod-2 ${seen ? seen.split("\n").length : 0}`);
    expect(seen).toBe("");
    expect(after.spoofed_source - before.spoofed_source).toBe(5);
    expect(await lab.ping("pod-1", pod2)).toBe(true);
    expect((await dropped()).spoofed_source).toBe(after.spoofed_source);
    expect((await lab.exec("worker-1", ["sh", "-c", "cat /proc/sys/net/ipv4/conf/cali*/rp_filter"])).trim().split("\n").every((v) => v === "1")).toBe(true);
  });

  it("weft node status on worker-1 names what its pods sent that was dropped", async () => {
    const text = await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "status", "--control", lab.controlSocket("worker-1")]);
    const line = text.split("\n").find((l) => l.startsWith("Dropped from this host's pods"));
    console.log(`[tpenc] worker-1 status: ${line}`);
    expect(line).toBe("Dropped from this host's pods: 5 IPIP packets, 5 VXLAN packets, 5 packets with another's source address (weft_pod_packets_dropped_total)");
  });

  it("pods' other traffic to a node's address still goes, masqueraded (ping pod-1 -> worker-2)", async () => {
    expect(await lab.ping("pod-1", WORKER2, { count: 2 })).toBe(true);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
  });

  it("the drop chain deleted by someone else: back at the node's next check, saying so, and the drops counted so far are still counted", async () => {
    const counted = await dropped();
    await lab.exec("worker-1", ["nft", "delete", "chain", "ip", "weft", "forward"]);
    const ms = await waitFor("weft's forward chain back on worker-1", async () => (await lab.exec("worker-1", ["nft", "list", "table", "ip", "weft"])).includes("chain forward"), 45_000);
    console.log(`[tpenc] forward chain deleted on worker-1: back after ${ms} ms; drops counted before ${JSON.stringify(counted)}, after ${JSON.stringify(await dropped())}`);
    expect(await dropped()).toEqual(counted);
    expect(await lab.exec("worker-1", ["tail", "-n", "40", path.join(lab.dir, "worker-1.log")])).toMatch(/was removed by someone else \(an nft flush\?\), or part of it: installing it again/);
  }, 60_000);
});
