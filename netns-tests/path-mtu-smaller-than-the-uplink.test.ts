// A router on the way takes smaller packets than the hosts' uplinks: the gateway's side
// toward worker-3's subnet (and worker-3's own link) is set to 1400 bytes after the
// nodes started at 1500. Full-size tunnel packets from worker-1 are dropped there with
// an ICMP fragmentation-needed; worker-3's own kernel refuses them. A kernel tunnel
// learns that path MTU and tells the pods; before weft did, a transfer pod-1 -> pod-3
// stalled at 0 bytes for good. Packets without DF are fragmented to fit. IPIP on the
// main thread, VXLAN with the receive thread (which hands what its sockets report to the
// main thread).
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { transfer, useLab } from "./helpers.js";
import { PODS } from "../router/lab/topology.js";

const addressOf = (pod: string) => PODS.find((p) => p.name === pod)!.address;
const MB20 = 20 * 1024 * 1024;

for (const [mode, prefix, rxThread, overhead] of [["ipip", "tpmtu", false, 20], ["vxlan", "tpmtuvx", true, 50]] as const) {
  describe(`${mode.toUpperCase()} through a router with a 1400-byte MTU (${rxThread ? "receive thread" : "one thread"})`, () => {
    const lab = useLab(prefix, mode, {
      rxThread,
      setup: async (l) => {
        for (const [host, dev] of [["gw", "v-w3"], ["gw", "brB"], ["worker-3", "eth0"]]) await l.exec(host, ["ip", "link", "set", dev, "mtu", "1400"]);
      },
    });
    const status = async (host: string) => (await lab.nodeStatus(host)) as { pathMTUs: Record<string, number>; counters: Record<string, number> };

    it(`pod-1 -> pod-3: worker-1 learns the path MTU toward worker-3 (1400) from the gateway's ICMP and answers pod-1 with fragmentation-needed at ${1400 - overhead}; 20 MB arrive whole`, async () => {
      const r = await transfer(lab, "pod-1", "pod-3", addressOf("pod-3"), MB20);
      const s = await status("worker-1");
      console.log(`[${prefix}] pod-1 -> pod-3: ${r.mbps.toFixed(0)} Mbit/s; worker-1 path MTUs ${JSON.stringify(s.pathMTUs)}, fragmentation-needed sent ${s.counters.icmp_frag_needed_sent}, network errors ${s.counters.network_errors}, sends refused ${s.counters.drop_send_failed}`);
      expect(r.received.bytes).toBe(MB20);
      expect(r.received.sha256).toBe(r.sent.sha256);
      expect(s.pathMTUs).toEqual({ "10.30.1.13": 1400 });
      expect(s.counters.icmp_frag_needed_sent).toBeGreaterThan(0);
      expect(await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "status", "--control", lab.controlSocket("worker-1")])).toMatch(/Smaller path MTUs .*: 10\.30\.1\.13 1400 \(uplink 1500\)/);
      expect(readFileSync(path.join(lab.dir, "worker-1.log"), "utf8")).toMatch(/"node":"10\.30\.1\.13","pathMTU":1400,"uplinkMTU":1500,.*a router toward this node takes smaller packets than the uplink/);
    });

    // pod-2 never heard from pod-3, so it offers pod-3 its full MSS (pod-1 would offer the
    // smaller one it learned above, and the case would test nothing).
    it("pod-3 -> pod-2: worker-3's own link shrank under it, so its kernel refuses the full-size packets; worker-3 learns 1400 from that refusal; 20 MB arrive whole", async () => {
      const r = await transfer(lab, "pod-3", "pod-2", addressOf("pod-2"), MB20);
      const s = await status("worker-3");
      console.log(`[${prefix}] pod-3 -> pod-2: ${r.mbps.toFixed(0)} Mbit/s; worker-3 path MTUs ${JSON.stringify(s.pathMTUs)}, fragmentation-needed sent ${s.counters.icmp_frag_needed_sent}, sends refused ${s.counters.drop_send_failed}`);
      expect(r.received.bytes).toBe(MB20);
      expect(r.received.sha256).toBe(r.sent.sha256);
      expect(s.pathMTUs["10.30.0.12"]).toBe(1400);
      expect(s.counters.icmp_frag_needed_sent).toBeGreaterThan(0);
      // And the node said its uplink changed under it, and what a restart would change.
      expect(readFileSync(path.join(lab.dir, "worker-3.log"), "utf8")).toMatch(/eth0's MTU changed from 1500 to 1400: weft0 and the data path keep the sizes they started with \(a smaller path is learned from the kernel's refusals\); restart the node/);
    });

    // Without DF a sender allows fragmentation: pod-1's kernel splits a 3000-byte UDP
    // datagram into fragments of its MTU (its learned path MTU flushed first, as a pod
    // that never sent there has none), and those no longer fit the path. worker-1
    // fragments them further, as the kernel's tunnels let them be fragmented. (Before:
    // each was dropped, counted as drop_too_big: any datagram over the pod MTU, such as
    // a large DNS answer, was lost toward a node behind such a router.)
    it("pod-1 -> pod-3: 3000-byte UDP datagrams without DF (fragmented by pod-1) cross the smaller MTU, fragmented again by worker-1", async () => {
      const receiver = lab.exec("pod-3", ["python3", "-c", "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9999)); s.settimeout(3)\nn=[]\ntry:\n  while True: n.append(len(s.recv(65535)))\nexcept OSError: pass\nprint(n)"], { timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 500));
      await lab.exec("pod-1", ["ip", "route", "flush", "cache"]);
      // IP_MTU_DISCOVER (10) = IP_PMTUDISC_DONT (0): no DF, the kernel fragments.
      await lab.exec("pod-1", ["python3", "-c", `import socket,time\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IP, 10, 0)\nfor i in range(3): s.sendto(b'x'*3000, ('${addressOf("pod-3")}', 9999)); time.sleep(0.1)`]);
      const got = JSON.parse((await receiver).trim()) as number[];
      const w1 = await status("worker-1");
      console.log(`[${prefix}] 3 UDP datagrams of 3000 bytes without DF: pod-3 received ${JSON.stringify(got)}; worker-1 fragmented ${w1.counters.packets_fragmented} packets into ${w1.counters.fragments_sent}, dropped as too big ${w1.counters.drop_too_big}`);
      expect(got).toEqual([3000, 3000, 3000]);
      expect(w1.counters.packets_fragmented).toBeGreaterThan(0);
    });
  });
}
