// A live switch between IPIP and VXLAN (weft apply of the pool) while a TCP transfer
// runs between pods: the connection survives and every byte arrives.
import { describe, expect, it } from "vitest";
import { transfer, useLab } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";

describe("switching encapsulation under a live TCP connection", () => {
  const lab = useLab("tswitch", "ipip", { datastore: "sqlite" });

  it("IPIP -> VXLAN -> IPIP during a 300 MB transfer pod-1 -> pod-3: same sha256", async () => {
    const switches = (async () => {
      await new Promise((r) => setTimeout(r, 800));
      await lab.apply(poolManifest("vxlan"));
      await new Promise((r) => setTimeout(r, 1500));
      await lab.apply(poolManifest("ipip"));
    })();
    const r = await transfer(lab, "pod-1", "pod-3", lab.podAddress("pod-3"), 300 * 1024 * 1024);
    await switches;
    const c = await lab.counters("worker-3");
    console.log(`[tswitch] ${r.received.bytes} bytes in ${r.seconds.toFixed(1)} s; worker-3 received ${c.ipip_rx} IPIP and ${c.vxlan_rx} VXLAN packets`);
    expect(r.received.sha256).toBe(r.sent.sha256);
    expect(c.ipip_rx).toBeGreaterThan(0);
    expect(c.vxlan_rx).toBeGreaterThan(0);
  });
});
