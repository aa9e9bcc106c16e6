// A real NIC merges IPIP packets of one TCP flow (GRO) before the raw IPIP socket sees
// them: weft is handed inner packets longer than the tunnel carries, with the TCP
// checksum left partial. The lab's veths do the same once worker-2's eth0 has GRO on
// and holds packets for it (gro_flush_timeout, as a NIC's interrupt coalescing does)
// and the gateway's side does not segment for it (TSO off). Before weft split such
// packets again, the pods' side dropped them as too big and a transfer crawled at
// about 0.1 Mbit/s; now the transfer arrives whole, with the TUN offloads on (the
// kernel splits, from a virtio GSO header) and off (split in the fast path).
import { describe, expect, it } from "vitest";
import { transfer, useLab } from "./helpers.js";
import { PODS } from "../router/lab/topology.js";

const POD2 = PODS.find((p) => p.name === "pod-2")!.address;
const MB50 = 50 * 1024 * 1024;


for (const offloads of ["on", "off"] as const) {
  describe(`IPIP into worker-2 while its NIC merges packets (GRO), TUN offloads ${offloads}`, () => {
    const prefix = offloads === "on" ? "tnicgro" : "tnicgro0";
    const lab = useLab(prefix, "ipip", { offloadsOff: offloads === "off", setup: (l) => l.nicGro(["worker-2"], true) });

    it("a 50 MB transfer pod-1 -> pod-2 arrives with the same sha256; weft split the merged packets again and dropped none", async () => {
      const before = await lab.counters("worker-2");
      const r = await transfer(lab, "pod-1", "pod-2", POD2, MB50);
      const c = await lab.counters("worker-2");
      const received = c.ipip_rx - before.ipip_rx;
      const merged = c.super_packets_received - before.super_packets_received;
      const drops = Object.entries(c).filter(([k, v]) => k.startsWith("drop_") && v > 0);
      console.log(`[${prefix}] ${(r.mbps).toFixed(0)} Mbit/s; worker-2 received ${received} IPIP packets for ${MB50} bytes, ${merged} of them merged by the NIC (${(MB50 / Math.max(received, 1)).toFixed(0)} bytes a packet); drops ${JSON.stringify(Object.fromEntries(drops))}`);
      expect(r.received.bytes).toBe(MB50);
      expect(r.received.sha256).toBe(r.sent.sha256);
      expect(merged).toBeGreaterThan(0);
      expect(drops).toEqual([]);
    });
  });
}
