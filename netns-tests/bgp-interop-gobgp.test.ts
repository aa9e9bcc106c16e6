// GoBGP as an eBGP peer of worker-1.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { GoBgp, until } from "./daemons.js";

describe("interop: GoBGP as a peer", () => {
  let gobgp: GoBgp;
  const lab = useLab("tgobgp", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      gobgp = new GoBgp(l, "gw");
      await gobgp.start(`[global.config]
  as = 65003
  router-id = "10.30.0.1"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.30.0.11"
    peer-as = 64512
`);
      await gobgp.gobgp(["global", "rib", "add", "10.97.0.0/24", "-a", "ipv4"]);
      await l.apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-gobgp}
spec: {peerIP: 10.30.0.1, asNumber: 65003, node: worker-1}
`);
    },
  });

  it("reaches Established (session_state 6) and GoBGP's RIB has worker-1's block", async () => {
    await until("GoBGP Established", async () => {
      const n = JSON.parse(await gobgp.gobgp(["neighbor", "-j"]));
      return n[0]?.state?.session_state === 6;
    });
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const rib = await until("weft's block in GoBGP", async () => {
      const r = JSON.parse(await gobgp.gobgp(["global", "rib", "-a", "ipv4", "-j"]));
      return r[block] && r;
    });
    console.log(`[tgobgp] GoBGP RIB: ${Object.keys(rib).join(", ")}`);
    expect(JSON.stringify(rib[block])).toContain("10.30.0.11");
  });

  it("weft learns GoBGP's 10.97.0.0/24", async () => {
    const r = await until("GoBGP's route in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.97.0.0/24"])).trim());
    expect(r).toMatch(/via 10\.30\.0\.1 dev eth0 proto 87/);
  });
});
