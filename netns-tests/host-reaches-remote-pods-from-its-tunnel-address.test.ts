// A host's own traffic to a remote pod (a health check, curl from the node, a
// NodePort forwarded to another host) must survive a cloud's source/destination
// check, as it does with Calico: weft0 holds the node's tunnel address, so that
// traffic leaves with a pod-network source and its replies come back through the
// tunnel. With the host's own address as source, the remote pod's reply crosses the
// underlay unencapsulated and the check drops it.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";

describe("a host reaches remote pods from its tunnel address", () => {
  const lab = useLab("thta", "ipip", { datastore: "sqlite", setup: (l) => l.setSrcDstCheck(true) });
  const tunnelAddressOf = async (host: string) => /ipv4VXLANTunnelAddr: (\S+)/.exec(await lab.weft(["get", "node", host, "-o", "yaml"]))?.[1];
  const remotePods = (host: string) => (["pod-1", "pod-2", "pod-3"] as const).filter((p) => p !== `pod-${host.slice(-1)}`);

  it("weft0 on each node holds that Node's tunnel address as a /32, and nothing else", async () => {
    for (const host of ["master", "worker-1", "worker-2", "worker-3"]) {
      const addr = await tunnelAddressOf(host);
      expect(addr, host).toMatch(/^192\.168\./);
      const onWeft0 = (await lab.exec(host, ["ip", "-4", "-o", "addr", "show", "dev", "weft0"])).trim().split("\n").map((l) => l.split(/\s+/)[3]);
      expect(onWeft0, host).toEqual([`${addr}/32`]);
    }
  });

  for (const mode of ["ipip", "vxlan"] as const) {
    it(`${mode}: with source/destination checks on, every host pings every remote pod, from its tunnel address`, async () => {
      if (mode !== "ipip") await lab.apply(poolManifest(mode));
      for (const host of ["master", "worker-1", "worker-3"]) {
        const addr = await tunnelAddressOf(host);
        for (const pod of remotePods(host)) {
          const target = lab.podAddress(pod);
          expect(await lab.exec(host, ["ip", "route", "get", target]), `${host} -> ${pod}`).toContain(`src ${addr}`);
          // The first ping after a pool change may meet routes still being replaced.
          const t0 = Date.now();
          while (!(await lab.ping(host, target, { timeoutS: 1 })) && Date.now() - t0 < 10_000);
          expect(await lab.ping(host, target), `${mode}: ${host} -> ${pod} (${target})`).toBe(true);
        }
      }
      console.log(`[thta] ${mode}: master, worker-1 and worker-3 reach each remote pod under source/destination checks`);
    });
  }
});
