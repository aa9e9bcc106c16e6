// worker-3 runs the Linux kernel's own vxlan device (VNI 4096, static FDB and
// neighbour entries, as Calico programs them) instead of weft: pod traffic flows
// both ways between it and weft nodes.
import { describe, expect, it } from "vitest";
import { transfer, useLab } from "./helpers.js";

describe("interop with the kernel's vxlan device", () => {
  // worker-3's weft node is replaced by a kernel VTEP using the MAC weft expects for it.
  const lab = useLab("tkvx", "vxlan", { setup: (l) => l.useKernelVxlan(["worker-3"]) });

  it("pod-1 (weft, worker-1) -> pod-3 (kernel vxlan, worker-3) answers ping", async () => {
    expect(await lab.ping("pod-1", "192.168.97.193", { count: 3 })).toBe(true);
  });

  it("pod-3 (kernel vxlan) -> pod-2 (weft, worker-2) answers ping", async () => {
    expect(await lab.ping("pod-3", "192.168.133.194", { count: 3 })).toBe(true);
  });

  it("TCP both ways between weft and the kernel VTEP keeps every byte", async () => {
    for (const [from, to, addr] of [
      ["pod-1", "pod-3", "192.168.97.193"],
      ["pod-3", "pod-1", "192.168.226.65"],
    ]) {
      const r = await transfer(lab, from, to, addr, 10 * 1024 * 1024);
      console.log(`[tkvx] ${from} -> ${to}: ${r.received.bytes} bytes, ${r.mbps.toFixed(0)} Mbit/s`);
      expect(r.received.sha256).toBe(r.sent.sha256);
    }
    const c = await lab.counters("worker-1");
    expect(c.vxlan_rx).toBeGreaterThan(0);
    expect(c.drop_wrong_mac + c.drop_wrong_vni + c.drop_unknown_source).toBe(0);
  });
});
