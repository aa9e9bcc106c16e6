// An underlay of jumbo frames (MTU 9000, as on many clouds' instance networks and in
// data centres): the tunnel takes the uplink's MTU less IPIP's 20 bytes, pods are wired
// with it, and full-size packets and a large transfer cross it whole, to the same
// subnet and across the gateway.
import { describe, expect, it } from "vitest";
import { transfer, useLab } from "./helpers.js";

const MB50 = 50 * 1024 * 1024;

describe("an underlay with MTU 9000", () => {
  const lab = useLab("tjumbo", "ipip", { datastore: "sqlite", uplinkMTU: 9000 });

  it("weft0 is 8980 on every node and pods are wired with it", async () => {
    for (const h of ["master", "worker-1", "worker-2", "worker-3"]) expect((await lab.exec(h, ["cat", "/sys/class/net/weft0/mtu"])).trim(), h).toBe("8980");
    expect((await lab.exec("pod-1", ["cat", "/sys/class/net/eth0/mtu"])).trim()).toBe("8980");
  });

  for (const to of ["pod-2", "pod-3"]) {
    it(`a full-size ping (8952 bytes, DF) pod-1 -> ${to} and a 50 MB transfer arrive whole`, async () => {
      expect(await lab.ping("pod-1", lab.podAddress(to), { size: 8952, df: true })).toBe(true);
      const r = await transfer(lab, "pod-1", to, lab.podAddress(to), MB50);
      console.log(`[tjumbo] pod-1 -> ${to}: ${r.received.bytes} bytes in ${r.seconds.toFixed(2)} s = ${r.mbps.toFixed(0)} Mbit/s`);
      expect(r.received.bytes).toBe(MB50);
      expect(r.received.sha256).toBe(r.sent.sha256);
    });
  }
});
