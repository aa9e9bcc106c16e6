// natOutgoing: a pod reaches a host behind the gateway (which has no pod routes) only
// when its pool has natOutgoing true.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";

describe("natOutgoing", () => {
  let external = "";
  const lab = useLab("tnat", "ipip", { datastore: "sqlite", setup: async (l) => void (external = await l.addExternalHost()) });

  const waitFor = async (check: () => Promise<boolean>) => {
    const until = Date.now() + 5000;
    while (!(await check()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    return check();
  };

  it("true (Calico's default pool): pod-1 reaches the outside host, as worker-1's address", async () => {
    expect(await lab.ping("pod-1", external, { count: 2 })).toBe(true);
    const rules = await lab.exec("worker-1", ["nft", "list", "table", "ip", "weft"]);
    expect(rules).toMatch(/ip saddr @masq-pools ip daddr != @all-pools masquerade/);
  });

  it("false: the outside host cannot answer pod addresses, so pod-1 does not reach it", async () => {
    await lab.apply(poolManifest("ipip", false));
    expect(await waitFor(async () => !/elements/.test(await lab.exec("worker-1", ["sh", "-c", "nft list set ip weft masq-pools"])))).toBe(true);
    expect(await lab.ping("pod-1", external, { timeoutS: 2 })).toBe(false);
    // Pod-to-pod traffic is untouched.
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });

  it("true again: reachable again", async () => {
    await lab.apply(poolManifest("ipip", true));
    expect(await waitFor(() => lab.ping("pod-1", external, { timeoutS: 1 }))).toBe(true);
  });
});
