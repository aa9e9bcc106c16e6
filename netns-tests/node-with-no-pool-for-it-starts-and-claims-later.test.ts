// A node that no enabled pool gives a tunnel address (all disabled during a migration,
// or nodeSelectors for other nodes) still starts, as Calico's does, and claims its
// tunnel address once a pool allows; its pods keep reaching the others throughout.
// In a pool migration the tunnel addresses move to the new pool, as Calico's do.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";

describe("a node with no pool for it", () => {
  const lab = useLab("tnopool", "ipip", { datastore: "sqlite" });
  const log = () => lab.exec("worker-1", ["cat", path.join(lab.dir, "worker-1.log")]);

  it("starts without a tunnel address while every pool is disabled, then claims one when a pool is enabled", async () => {
    await lab.apply(`${poolManifest("ipip")}  disabled: true\n`);
    await lab.stopNode("worker-1");
    // Deleting the Node also releases its tunnel address: the restart must claim a new one.
    expect(await lab.weft(["delete", "node", "worker-1"])).toMatch(/released its tunnel address/);
    await lab.restartNode("worker-1");
    expect(await log()).toMatch(/no enabled IP pool gives this node a tunnel address/);
    // The other nodes dropped worker-1's routes with its Node; they come back over BGP.
    const t1 = Date.now();
    while (!(await lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 })) && Date.now() - t1 < 20_000);
    console.log(`[tnopool] pod-1 -> pod-2 again ${Date.now() - t1} ms after the restart, with no tunnel address`);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    await lab.apply(poolManifest("ipip"));
    const t0 = Date.now();
    while (!/claimed a tunnel address/.test(await log()) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 200));
    console.log(`[tnopool] tunnel address claimed ${Date.now() - t0} ms after the pool was enabled`);
    expect(await lab.weft(["get", "node", "worker-1", "-o", "yaml"])).toMatch(/ipv4IPIPTunnelAddr: 192\.168\./);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });

  it("a pool migration (a new pool, the old one disabled): every node's tunnel address, on weft0 too, moves to the new pool; hosts and pods still reach each other", async () => {
    await lab.apply("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: new-pool\nspec:\n  cidr: 10.244.0.0/16\n  ipipMode: Always\n  natOutgoing: true\n");
    await lab.apply(`${poolManifest("ipip")}  disabled: true\n`);
    const hosts = ["master", "worker-1", "worker-2", "worker-3"];
    const t0 = Date.now();
    const moved = async () => {
      for (const h of hosts) {
        if (!/ipv4IPIPTunnelAddr: 10\.244\./.test(await lab.weft(["get", "node", h, "-o", "yaml"]))) return false;
        if (!/inet 10\.244\.\S+\/32/.test(await lab.exec(h, ["ip", "-4", "-o", "addr", "show", "dev", "weft0"]))) return false;
      }
      return true;
    };
    while (!(await moved()) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 250));
    console.log(`[tnopool] tunnel addresses moved to the new pool in ${Date.now() - t0} ms`);
    expect(await moved()).toBe(true);
    expect(await log()).toMatch(/tunnel address moved: its pool no longer gives this node tunnel addresses/);
    // The pods keep their old-pool addresses (disabled pools stay routed); hosts reach them from the new tunnel address.
    const t1 = Date.now();
    while (!(await lab.ping("worker-1", lab.podAddress("pod-3"), { timeoutS: 1 })) && Date.now() - t1 < 10_000);
    expect(await lab.ping("worker-1", lab.podAddress("pod-3"))).toBe(true);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });
});
