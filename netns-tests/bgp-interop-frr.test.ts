// FRR's bgpd as an external eBGP peer of worker-1: FRR's RIB shows weft's block as
// valid, weft installs FRR's route, and a soft reset in on FRR (ROUTE-REFRESH) gets
// weft's routes sent again.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { Frr, until } from "./daemons.js";

const PEER = `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-frr}
spec: {peerIP: 10.30.0.1, asNumber: 65002, node: worker-1}
`;

describe("interop: FRR bgpd as a peer", () => {
  let frr: Frr;
  const lab = useLab("tfrr", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      frr = new Frr(l, "gw");
      await frr.start(`frr defaults traditional
hostname gw
router bgp 65002
 bgp router-id 10.30.0.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.30.0.11 remote-as 64512
 address-family ipv4 unicast
  network 10.98.0.0/24
 exit-address-family
`);
      await l.apply(PEER);
    },
  });

  it("reaches Established (FRR's summary and weft node status agree)", async () => {
    const sum = await until("FRR to reach Established", async () => {
      const j = await frr.json("show bgp ipv4 unicast summary");
      return j.peers?.["10.30.0.11"]?.state === "Established" && j;
    });
    expect(sum.peers["10.30.0.11"].state).toBe("Established");
    // FRR turns Established on weft's KEEPALIVE; weft turns Established on FRR's, which
    // may follow a moment later: wait for weft to agree (and say how long it took).
    const t0 = Date.now();
    type Peer = { address: string; state: string; type: string; info: string };
    const peer = await until("weft's status to show FRR Established", async () => {
      const bgp = JSON.parse(await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "status", "--json", "--control", lab.controlSocket("worker-1")])).bgp as { peers: Peer[] };
      const p = bgp.peers.find((x) => x.address === "10.30.0.1");
      return p?.info === "Established" && p;
    });
    console.log(`[tfrr] weft showed Established ${Date.now() - t0} ms after FRR did`);
    expect(peer).toMatchObject({ state: "up", type: "node specific", info: "Established" });
  });

  it("FRR's RIB has worker-1's block as valid, next hop worker-1", async () => {
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const routes = await until("weft's block in FRR", async () => (await frr.json("show bgp ipv4 unicast")).routes?.[block]);
    console.log(`[tfrr] FRR has ${block}: ${JSON.stringify(routes[0].nexthops?.[0])} valid=${routes[0].valid}`);
    expect(routes[0].valid).toBe(true);
    expect(routes[0].nexthops[0].ip).toBe("10.30.0.11");
  });

  it("weft learns FRR's 10.98.0.0/24 and routes it via FRR", async () => {
    const r = await until("FRR's route in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.98.0.0/24"])).trim());
    expect(r).toMatch(/^10\.98\.0\.0\/24 via 10\.30\.0\.1 dev eth0 proto 87/);
  });

  it("clear bgp soft in on FRR sends ROUTE-REFRESH; weft sends its routes again and the session stays up", async () => {
    type Stats = { routeRefreshSent: number; updatesRecv: number };
    const stats = async () => (await frr.json("show bgp neighbors 10.30.0.11"))["10.30.0.11"].messageStats as Stats;
    const before = await stats();
    await frr.vtysh("clear bgp ipv4 unicast 10.30.0.11 soft in");
    const after = await until("FRR to receive the routes again", async () => {
      const s = await stats();
      return s.updatesRecv > before.updatesRecv && s;
    });
    console.log(`[tfrr] FRR: route refreshes sent ${before.routeRefreshSent} -> ${after.routeRefreshSent}, updates received ${before.updatesRecv} -> ${after.updatesRecv}`);
    expect(after.routeRefreshSent).toBeGreaterThan(before.routeRefreshSent);
    expect((await frr.json("show bgp ipv4 unicast summary")).peers["10.30.0.11"].state).toBe("Established");
    expect(await lab.exec("worker-1", ["tail", "-n", "50", `${lab.dir}/worker-1.log`])).toMatch(/peer asked for our routes again \(ROUTE-REFRESH\)/);
  });
});
