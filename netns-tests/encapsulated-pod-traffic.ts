// The data-plane acceptance for one encapsulation, shared by the IPIP and VXLAN files.
import { describe, expect, it } from "vitest";
import { capture, transfer, useLab } from "./helpers.js";
import { PODS } from "../router/lab/topology.js";
import { vtepMAC } from "../router/dataplane/vtep.js";

const pod = (name: string) => PODS.find((p) => p.name === name)!;
const MB50 = 50 * 1024 * 1024;

export function encapsulatedPodTraffic(mode: "ipip" | "vxlan", prefix: string, offloads: "on" | "off"): void {
  // With offloads off the nodes also receive on their main thread, so both the receive
  // thread and the single-thread path carry the same checks; both busy-poll, so the
  // packets it picks up take the same checks too (the other labs run without it).
  const threads = offloads === "on" ? "receive thread" : "one thread";
  describe(`${mode.toUpperCase()} between pods through weft nodes, offloads ${offloads}, ${threads}, busy-poll on`, () => {
    const lab = useLab(prefix, mode, { offloadsOff: offloads === "off", rxThread: offloads === "on", busyPollMicros: 40 });

    it("pod-1 -> pod-2 (same subnet) answers ping", async () => {
      expect(await lab.ping("pod-1", pod("pod-2").address)).toBe(true);
    });

    it("pod-1 -> pod-3 (across the gateway) answers ping", async () => {
      expect(await lab.ping("pod-1", pod("pod-3").address)).toBe(true);
    });

    for (const to of ["pod-2", "pod-3"]) {
      it(`a 50 MB TCP transfer pod-1 -> ${to} arrives with the same sha256`, async () => {
        const r = await transfer(lab, "pod-1", to, pod(to).address, MB50);
        console.log(`[${prefix}] ${mode} offloads ${offloads} pod-1 -> ${to}: ${r.received.bytes} bytes in ${r.seconds.toFixed(2)} s = ${r.mbps.toFixed(0)} Mbit/s, sha256 ${r.received.sha256.slice(0, 16)}…`);
        expect(r.received.bytes).toBe(MB50);
        expect(r.received.sha256).toBe(r.sent.sha256);
      });
    }

    it(`the nodes run with offloads ${offloads}, ${threads}, busy-poll on`, async () => {
      const s = (await lab.nodeStatus("worker-1")) as { offloads: Record<string, boolean>; receiveThread: boolean; busyPollMicros: number };
      const c = await lab.counters("worker-2");
      console.log(`[${prefix}] offloads ${JSON.stringify(s.offloads)}, receive thread ${s.receiveThread}; worker-2 merged ${c.gro_segments_merged} segments into ${c.gro_packets_written}, received ${c.vxlan_rx + c.ipip_rx} packets; busy-poll ${s.busyPollMicros} us: ${c.busy_poll_hits} hits, ${c.busy_poll_misses} misses`);
      expect(Object.values(s.offloads).every((v) => v === (offloads === "on"))).toBe(true);
      expect(s.receiveThread).toBe(offloads === "on");
      expect(s.busyPollMicros).toBe(40);
      expect(c.busy_poll_hits + c.busy_poll_misses).toBeGreaterThan(0);
      // The receive thread's counters reach the control socket.
      expect(c.vxlan_rx + c.ipip_rx).toBeGreaterThan(30_000);
      if (offloads === "on") expect(c.gro_packets_written).toBeGreaterThan(0);
      else expect(c.gro_packets_written + c.tso_segments).toBe(0);
    });

    if (mode === "ipip") {
      it("captured underlay packets decode as IPIP: host addresses outside, protocol 4, pod addresses inside", async () => {
        const rows = await capture(lab, "gw", "brA", "ip proto 4", ["ip.src", "ip.dst", "ip.proto"], () => lab.ping("pod-1", pod("pod-2").address, { count: 2 }), 4);
        console.log(`[${prefix}] captured:`, rows.map((r) => r.join(" ")).join(" / "));
        expect(rows.length).toBeGreaterThanOrEqual(2);
        const [src, dst, proto] = rows.find((r) => r[0].startsWith("10.30.0.11"))!;
        expect(src.split(",")).toEqual(["10.30.0.11", "192.168.226.65"]);
        expect(dst.split(",")).toEqual(["10.30.0.12", "192.168.133.194"]);
        expect(proto.split(",")).toEqual(["4", "1"]);
      });
    } else {
      it("captured underlay packets decode as VXLAN: UDP 4789, VNI 4096, inner MACs as derived", async () => {
        const rows = await capture(lab, "gw", "brA", "udp port 4789", ["udp.dstport", "vxlan.vni", "eth.src", "eth.dst", "ip.src", "ip.dst"], () => lab.ping("pod-1", pod("pod-2").address, { count: 2 }), 4);
        console.log(`[${prefix}] captured:`, rows.map((r) => r.join(" ")).join(" / "));
        expect(rows.length).toBeGreaterThanOrEqual(2);
        const [port, vni, ethSrc, ethDst, ipSrc, ipDst] = rows.find((r) => r[4].startsWith("10.30.0.11"))!;
        expect(port).toBe("4789");
        expect(vni).toBe("4096");
        // Outer Ethernet is the hosts' veths; inner is the VTEPs.
        expect(ethSrc.split(",")[1]).toBe(vtepMAC("worker-1"));
        expect(ethDst.split(",")[1]).toBe(vtepMAC("worker-2"));
        expect(ipSrc.split(",")).toEqual(["10.30.0.11", "192.168.226.65"]);
        expect(ipDst.split(",")).toEqual(["10.30.0.12", "192.168.133.194"]);
      });
    }
  });
}
