// BIRD 2 as an external eBGP router for worker-1: routes both ways, checked with
// birdc and with weft.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { Bird, until } from "./daemons.js";

describe("interop: BIRD 2 as an external peer", () => {
  let bird: Bird;
  const lab = useLab("tbirdx", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      bird = new Bird(l, "gw");
      await bird.start(`router id 10.30.0.1;
protocol device {}
protocol static { ipv4; route 10.99.0.0/24 blackhole; }
protocol bgp w1 { local as 65001; neighbor 10.30.0.11 as 64512; direct; ipv4 { import all; export all; }; }
`);
      await l.apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-bird}
spec: {peerIP: 10.30.0.1, asNumber: 65001, node: worker-1}
`);
    },
  });

  it("birdc shows the session Established and worker-1's block learned from it", async () => {
    await until("BIRD to reach Established", async () => /Established/.test(await bird.birdc(["show", "protocols", "w1"])));
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const routes = await until("weft's block in BIRD", async () => {
      const out = await bird.birdc(["show", "route", "protocol", "w1"]);
      return out.includes(block) && out;
    });
    console.log(`[tbirdx] birdc show route protocol w1:\n${routes}`);
    expect(routes).toMatch(new RegExp(`${block.replace(/\./g, "\\.")}\\s+unicast \\[w1 .*\\] \\* \\(100\\) \\[AS64512i\\]`));
    expect(routes).toMatch(/via 10\.30\.0\.11 on brA/);
  });

  it("weft learns BIRD's 10.99.0.0/24 with AS path 65001 and routes it via BIRD", async () => {
    const r = await until("BIRD's route in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.99.0.0/24"])).trim());
    expect(r).toMatch(/^10\.99\.0\.0\/24 via 10\.30\.0\.1 dev eth0 proto 87/);
    const routes = JSON.parse(await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "routes", "--control", lab.controlSocket("worker-1")]));
    expect(routes.bgp.find((x: { cidr: string }) => x.cidr === "10.99.0.0/24")).toMatchObject({ nextHop: "10.30.0.1", peer: "10.30.0.1", asPath: [65001] });
  });

  it("BIRD killed: weft withdraws its route after the session drops", async () => {
    await lab.exec("gw", ["sh", "-c", `kill -9 $(cat ${bird.dir}/bird.pid)`]);
    const t0 = Date.now();
    await until("the route to go", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.99.0.0/24"])).trim() === "", 120_000);
    console.log(`[tbirdx] route withdrawn ${Date.now() - t0} ms after BIRD was killed`);
  });
});
