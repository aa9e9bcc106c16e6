// A host's own traffic to a remote pod (a health check, curl from the node, a
// NodePort forwarded to another host) must survive a cloud's source/destination
// check, as it does with Calico: weft0 holds the node's tunnel address, so that
// traffic leaves with a pod-network source and its replies come back through the
// tunnel. With the host's own address as source, the remote pod's reply crosses the
// underlay unencapsulated and the check drops it.
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";

describe("a host reaches remote pods from its tunnel address", () => {
  const lab = useLab("thta", "ipip", { datastore: "sqlite", setup: (l) => l.setSrcDstCheck(true) });
  // Where Calico's node puts it: bgp.ipv4IPIPTunnelAddr under IPIP pools, ipv4VXLANTunnelAddr (with the VTEP MAC) under VXLAN ones.
  const tunnelFieldsOf = async (host: string) => {
    const yaml = await lab.weft(["get", "node", host, "-o", "yaml"]);
    return { ipip: /ipv4IPIPTunnelAddr: (\S+)/.exec(yaml)?.[1], vxlan: /ipv4VXLANTunnelAddr: (\S+)/.exec(yaml)?.[1], mac: /vxlanTunnelMACAddr: (\S+)/.exec(yaml)?.[1] };
  };
  const tunnelAddressOf = async (host: string) => {
    const f = await tunnelFieldsOf(host);
    return f.ipip ?? f.vxlan;
  };
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
      const before = await tunnelFieldsOf("worker-1");
      if (mode !== "ipip") {
        await lab.apply(poolManifest(mode));
        const ms = await waitFor("worker-1's tunnel address in the VXLAN fields", async () => !!(await tunnelFieldsOf("worker-1")).vxlan, 10_000);
        console.log(`[thta] pool switched to VXLAN: worker-1's Node has its tunnel address in ipv4VXLANTunnelAddr ${ms} ms later`);
        expect(await tunnelFieldsOf("worker-1")).toEqual({ ipip: undefined, vxlan: before.ipip, mac: expect.stringMatching(/^66:/) });
      } else {
        expect(before).toEqual({ ipip: expect.stringMatching(/^192\.168\./), vxlan: undefined, mac: undefined });
      }
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
