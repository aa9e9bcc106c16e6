// BIRD 2 as an external eBGP router for worker-1: routes both ways, checked with
// birdc and with weft, and again when BIRD asks for them (ROUTE-REFRESH), other nodes'
// blocks passed on (next hop self, or kept with keepOriginalNextHop); for worker-2 with a BGP password (TCP MD5); for worker-3 with
// GTSM (BIRD's ttl security, the BGPPeer's ttlSecurity); for master as a multihop
// peer on a loopback address (the BGPPeer's reachableBy). Routes learned
// from it sit beside the host's own (metric 32, as BIRD's kernel protocol puts them):
// a host route for the same prefix keeps winning and outlives the withdrawal, and a
// default route from the peer never replaces the host's.
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { Bird, gatewayBirdPeer, until } from "./daemons.js";

const tor2 = (password: string) => `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-bird-md5}
spec: {peerIP: 10.30.0.1, asNumber: 65001, node: worker-2, password: ${password}}
`;

const tor3 = (ttlSecurity: number) => `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-bird-gtsm}
spec: {peerIP: 10.30.1.1, asNumber: 65001, node: worker-3, ttlSecurity: ${ttlSecurity}}
`;

describe("interop: BIRD 2 as an external peer", () => {
  let bird: Bird;
  const lab = useLab("tbirdx", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      // worker-1's own route for a prefix BIRD will also announce.
      await l.exec("worker-1", ["ip", "route", "add", "10.98.0.0/24", "via", "10.30.0.1", "dev", "eth0"]);
      // A loopback address for BIRD's multihop session with master (BGPPeer reachableBy).
      await l.exec("gw", ["ip", "addr", "add", "10.30.9.1/32", "dev", "lo"]);
      bird = new Bird(l, "gw");
      await bird.start(`router id 10.30.0.1;
protocol device {}
protocol static { ipv4; route 10.99.0.0/24 blackhole; route 10.98.0.0/24 blackhole; route 0.0.0.0/0 blackhole; }
protocol bgp w1 { local as 65001; neighbor 10.30.0.11 as 64512; direct; ipv4 { import all; export all; }; }
protocol bgp w2 { local as 65001; neighbor 10.30.0.12 as 64512; direct; password "md5-s3cret"; ipv4 { import all; export all; }; }
protocol bgp w3 { local as 65001; neighbor 10.30.1.13 as 64512; direct; ttl security on; ipv4 { import all; export all; }; }
protocol static lo9 { ipv4; route 10.30.8.0/24 blackhole; }
protocol bgp m9 { local 10.30.9.1 as 65001; neighbor 10.30.0.10 as 64512; multihop; ipv4 { import all; export where net = 10.30.8.0/24; }; }
`);
      await l.apply(gatewayBirdPeer());
      await l.apply(tor2("md5-s3cret"));
      await l.apply(tor3(1));
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

  it("birdc reload in w1 (BIRD asks for the routes again with ROUTE-REFRESH): weft sends them all again, the session stays up", async () => {
    const received = async () => Number(/Import updates:\s+(\d+)/.exec(await bird.birdc(["show", "protocols", "all", "w1"]))?.[1] ?? NaN);
    const before = await received();
    expect(before).toBeGreaterThan(0);
    await bird.birdc(["reload", "in", "w1"]);
    const after = await until("the updates again", async () => ((await received()) > before ? received() : undefined));
    console.log(`[tbirdx] BIRD's import updates from w1: ${before} before reload in, ${after} after`);
    expect(await bird.birdc(["show", "protocols", "w1"])).toMatch(/Established/);
    expect(await lab.exec("worker-1", ["tail", "-n", "50", `${lab.dir}/worker-1.log`])).toMatch(/peer asked for our routes again \(ROUTE-REFRESH\)/);
  });

  it("worker-1 passes master's block on to BIRD (next hop worker-1, as Calico's BIRD exports every route inside a pool); with keepOriginalNextHop it comes with master's address, and the session stays up", async () => {
    const masterBlock = (await lab.exec("master", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const fromW1 = () => bird.birdc(["show", "route", masterBlock, "protocol", "w1"]);
    const passed = await until("master's block from w1", async () => ((await fromW1()).includes(masterBlock) ? fromW1() : undefined));
    console.log(`[tbirdx] birdc show route ${masterBlock} protocol w1:\n${passed}`);
    expect(passed).toMatch(/unicast \[w1 .*\] .*\[AS64512i\]/);
    expect(passed).toMatch(/via 10\.30\.0\.11 on brA/);
    const since = async () => /^w1\s+BGP\s+\S+\s+up\s+(\S+)/m.exec(await bird.birdc(["show", "protocols", "w1"]))?.[1];
    const before = await since();
    await lab.apply(gatewayBirdPeer(", keepOriginalNextHop: true"));
    const kept = await until("master's address as next hop", async () => {
      const out = await fromW1();
      return /via 10\.30\.0\.10 on brA/.test(out) && out;
    });
    console.log(`[tbirdx] with keepOriginalNextHop:\n${kept}`);
    expect(await since()).toBe(before);
    // weft node routes says the same of what it sent BIRD (bgpExported, BIRD's show route export).
    const routes = JSON.parse(await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "routes", "--control", lab.controlSocket("worker-1")]));
    expect(routes.bgpExported.find((e: { cidr: string; peer: string }) => e.cidr === masterBlock && e.peer === "10.30.0.1")).toMatchObject({ nextHop: "10.30.0.10", asPath: [64512] });
  });

  it("weft learns BIRD's 10.99.0.0/24 with AS path 65001 and routes it via BIRD", async () => {
    const r = await until("BIRD's route in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.99.0.0/24"])).trim());
    expect(r).toMatch(/^10\.99\.0\.0\/24 via 10\.30\.0\.1 dev eth0 proto 87 metric 32/);
    const routes = JSON.parse(await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "routes", "--control", lab.controlSocket("worker-1")]));
    expect(routes.bgp.find((x: { cidr: string }) => x.cidr === "10.99.0.0/24")).toMatchObject({ nextHop: "10.30.0.1", peer: "10.30.0.1", asPath: [65001] });
  });

  it("a prefix the host routes itself keeps the host's route (weft's beside it at metric 32); BIRD's default route never replaces the host's", async () => {
    const both = await until("BIRD's 10.98.0.0/24 beside worker-1's own", async () => {
      const out = (await lab.exec("worker-1", ["ip", "route", "show", "10.98.0.0/24"])).trim();
      return out.includes("proto 87") && out;
    });
    console.log(`[tbirdx] worker-1: ip route show 10.98.0.0/24:\n${both}`);
    expect(both.split("\n")[0].trim()).toBe("10.98.0.0/24 via 10.30.0.1 dev eth0");
    expect(both).toMatch(/10\.98\.0\.0\/24 via 10\.30\.0\.1 dev eth0 proto 87 metric 32/);
    expect((await lab.exec("worker-1", ["ip", "route", "show", "default"])).trim()).toBe("default via 10.30.0.1 dev eth0");
    expect(await lab.exec("worker-1", ["tail", "-n", "200", `${lab.dir}/worker-1.log`])).toMatch(/routes from BGP peers that cover a node's underlay address .* are not installed/);
  });

  it("with a BGP password (TCP MD5) on both sides worker-2's session is Established; with a wrong one it goes down and stays down; the right one again brings it back", async () => {
    const state = async () => (await bird.birdc(["show", "protocols", "w2"])).split("\n").find((l) => l.startsWith("w2")) ?? "";
    await until("BIRD's w2 (password) to reach Established", async () => /Established/.test(await state()));
    await lab.apply(tor2("wrong"));
    await until("w2 to go down", async () => !/Established/.test(await state()), 30_000);
    await new Promise((r) => setTimeout(r, 5000));
    const down = await state();
    console.log(`[tbirdx] with a wrong password, 5 s later: ${down.replace(/\s+/g, " ")}`);
    expect(down).not.toMatch(/Established/);
    await lab.apply(tor2("md5-s3cret"));
    const t0 = Date.now();
    await until("w2 back with the right password", async () => /Established/.test(await state()), 60_000);
    console.log(`[tbirdx] right password again: Established after ${Date.now() - t0} ms`);
  });

  it("with ttlSecurity (GTSM) against BIRD's ttl security worker-3's session is Established; without it BIRD drops weft's segments and the session stays down; on again (and BIRD's stale connection dropped), it comes back", async () => {
    const state = async () => (await bird.birdc(["show", "protocols", "w3"])).split("\n").find((l) => l.startsWith("w3")) ?? "";
    const t0 = Date.now();
    await until("BIRD's w3 (ttl security) to reach Established", async () => /Established/.test(await state()), 60_000);
    console.log(`[tbirdx] ttlSecurity 1 against ttl security on: Established ${Date.now() - t0} ms into this case`);
    expect(await lab.exec("worker-3", ["ip", "route", "show", "10.99.0.0/24"])).toMatch(/via 10\.30\.1\.1/);
    await lab.apply(tor3(0));
    await until("w3 to go down", async () => !/Established/.test(await state()), 30_000);
    await new Promise((r) => setTimeout(r, 5000));
    const down = await state();
    console.log(`[tbirdx] without ttlSecurity, 5 s later: ${down.replace(/\s+/g, " ")}`);
    expect(down).not.toMatch(/Established/);
    await lab.apply(tor3(1));
    // BIRD still holds the connection weft opened without GTSM (it dropped weft's segments,
    // so it never saw them close) and refuses new ones until that one's hold timer ends
    // (240 s in OpenSent): restart w3 in BIRD to drop it, as an operator would.
    await bird.birdc(["restart", "w3"]);
    const t1 = Date.now();
    await until("w3 back with ttlSecurity", async () => /Established/.test(await state()), 60_000);
    console.log(`[tbirdx] ttlSecurity again: Established after ${Date.now() - t1} ms`);
  });

  it("a multihop peer on a loopback address with reachableBy: master pins 10.30.9.1/32 through the gateway, reaches Established and routes what BIRD announces; without reachableBy the pin goes", async () => {
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-bird-loopback}
spec: {peerIP: 10.30.9.1, asNumber: 65001, node: master, reachableBy: 10.30.0.1}
`);
    await until("BIRD's m9 (multihop, to master) Established", async () => /Established/.test(await bird.birdc(["show", "protocols", "m9"])), 60_000);
    const pin = (await lab.exec("master", ["ip", "route", "show", "10.30.9.1/32"])).trim();
    const learned = await until("BIRD's 10.30.8.0/24 on master", async () => (await lab.exec("master", ["ip", "route", "show", "10.30.8.0/24"])).trim());
    console.log(`[tbirdx] master: ${pin}; ${learned}`);
    expect(pin).toBe("10.30.9.1 via 10.30.0.1 dev eth0 proto 87 metric 32");
    expect(learned).toMatch(/^10\.30\.8\.0\/24 via 10\.30\.0\.1 dev eth0 proto 87 metric 32/);
    // Without reachableBy the pin goes (the session stays: the default route still reaches the peer).
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-bird-loopback}
spec: {peerIP: 10.30.9.1, asNumber: 65001, node: master}
`);
    await until("the pin gone", async () => (await lab.exec("master", ["ip", "route", "show", "10.30.9.1/32"])).trim() === "");
  });

  it("BIRD killed: weft withdraws its route after the session drops", async () => {
    await lab.exec("gw", ["sh", "-c", `kill -9 $(cat ${bird.dir}/bird.pid)`]);
    const t0 = Date.now();
    await until("the route to go", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.99.0.0/24"])).trim() === "", 120_000);
    console.log(`[tbirdx] route withdrawn ${Date.now() - t0} ms after BIRD was killed`);
    await until("weft's 10.98.0.0/24 to go", async () => !(await lab.exec("worker-1", ["ip", "route", "show", "10.98.0.0/24"])).includes("proto 87"), 30_000);
    expect((await lab.exec("worker-1", ["ip", "route", "show", "10.98.0.0/24"])).trim()).toBe("10.98.0.0/24 via 10.30.0.1 dev eth0");
  });
});
