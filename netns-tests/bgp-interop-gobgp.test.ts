// GoBGP as an eBGP peer of worker-1: routes both ways, with standard and large
// communities both ways (Calico's prefixAdvertisements out, GoBGP's in), and Calico's
// BGPFilter on that peer (import and export rules, changed and deleted on a live session),
// numAllowedLocalASNumbers letting in a route that carries worker-1's own AS, and
// BGPConfiguration serviceClusterIPs announced by every node, and worker-2 peering as
// another AS (BGPPeer localASNumber), and a BGPFilter's operations (prepend, community).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { GoBgp, until } from "./daemons.js";
import { controlGet } from "../router/control/client.js";

type GoBgpAttr = { type: number; as_paths?: Array<{ asns: number[] }>; communities?: number[]; value?: Array<Record<string, number>>; nexthop?: string };
type GoBgpPath = { "neighbor-ip"?: string; attrs: GoBgpAttr[] };

describe("interop: GoBGP as a peer", () => {
  let gobgp: GoBgp;
  const rib = async (): Promise<Record<string, GoBgpPath[]>> => JSON.parse(await gobgp.gobgp(["global", "rib", "-a", "ipv4", "-j"]));
  /** GoBGP's path for a prefix as one neighbor sent it (each node also passes on the others' blocks). */
  const pathFrom = async (prefix: string, neighbor = "10.30.0.11") => (await rib())[prefix]?.find((p) => p["neighbor-ip"] === neighbor);
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
      await gobgp.gobgp(["global", "rib", "add", "10.97.0.0/24", "community", "65003:7", "large-community", "65003:1:2", "-a", "ipv4"]);
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
    const table = await until("weft's block in GoBGP", async () => {
      const r = await rib();
      return r[block] && r;
    });
    console.log(`[tgobgp] GoBGP RIB: ${Object.keys(table).join(", ")}`);
    expect(JSON.stringify(table[block])).toContain("10.30.0.11");
  });

  it("weft learns GoBGP's 10.97.0.0/24, and weft node routes shows its standard and large communities", async () => {
    const r = await until("GoBGP's route in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.97.0.0/24"])).trim());
    expect(r).toMatch(/via 10\.30\.0\.1 dev eth0 proto 87/);
    const learned = (JSON.parse(await controlGet(lab.controlSocket("worker-1"), "/routes")) as { bgp: Array<{ cidr: string; communities: string[] }> }).bgp.find((p) => p.cidr === "10.97.0.0/24");
    expect(learned?.communities).toEqual(["65003:7", "65003:1:2"]);
  });

  it("BGPConfiguration prefixAdvertisements: worker-1's block reaches GoBGP with Calico's communities, named and written out; worker-1's own BGPConfiguration overrides them (a name it gives that nothing defines is logged)", async () => {
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  communities: [{name: rack-a, value: "64512:300:100"}]
  prefixAdvertisements: [{cidr: 192.168.0.0/16, communities: [rack-a, "64512:120"]}]
`);
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const attrs = await until("the communities on weft's block in GoBGP", async () => {
      const path = await pathFrom(block);
      return path?.attrs.some((a) => a.type === 32) && path.attrs;
    });
    console.log(`[tgobgp] ${block} in GoBGP: ${JSON.stringify(attrs)}`);
    expect(attrs.find((a) => a.type === 8)?.communities).toEqual([((64512 << 16) | 120) >>> 0]);
    expect(attrs.find((a) => a.type === 32)?.value).toEqual([{ ASN: 64512, LocalData1: 300, LocalData2: 100 }]);
    // worker-1's own BGPConfiguration overrides the advertisements, naming the default's community.
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: node.worker-1}
spec:
  prefixAdvertisements: [{cidr: 192.168.0.0/16, communities: [rack-a, rack-z]}]
`);
    const own = await until("worker-1's own advertisements in GoBGP", async () => {
      const path = await pathFrom(block);
      return path && !path.attrs.some((a) => a.type === 8) && path.attrs;
    });
    expect(own.some((a) => a.type === 32)).toBe(true);
    // rack-z is defined nowhere: the node says so, and the routes go without it.
    const log = readFileSync(path.join(lab.dir, "worker-1.log"), "utf8");
    expect(log).toMatch(/"communities":"rack-z".*prefixAdvertisements name communities that BGPConfiguration\(default\) does not define; routes go out without them/);
  });

  it("a BGPFilter on the GoBGP peer: its import rule keeps GoBGP's /25 out of worker-1's routes, its export rule keeps worker-1's block from GoBGP; deleted, both come back; the session never restarts", async () => {
    await gobgp.gobgp(["global", "rib", "add", "10.98.0.0/24", "-a", "ipv4"]);
    await gobgp.gobgp(["global", "rib", "add", "10.98.1.0/25", "-a", "ipv4"]);
    await until("GoBGP's /24 and /25 in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "root", "10.98.0.0/16"])).includes("10.98.1.0/25"));
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    type Peer = { address: string; established: number; filters?: { names: string[]; importRejected: number; exportRejected: number } };
    const torPeer = async () => (JSON.parse(await controlGet(lab.controlSocket("worker-1"), "/bgp")) as { peers: Peer[] }).peers.find((p) => p.address === "10.30.0.1")!;
    const onWorker1 = (args: string[]) => lab.exec("worker-1", [process.execPath, lab.cli(), ...args, "--control", lab.controlSocket("worker-1")]);
    const before = (await torPeer()).established;
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: tor-filter}
spec:
  importV4:
    - {action: Reject, matchOperator: In, cidr: 10.98.0.0/16, prefixLength: {min: 25}}
  exportV4:
    - {action: Reject, matchOperator: In, cidr: 192.168.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-gobgp}
spec: {peerIP: 10.30.0.1, asNumber: 65003, node: worker-1, filters: [tor-filter]}
`);
    await until("the /25 out of worker-1's table", async () => !(await lab.exec("worker-1", ["ip", "route", "show", "root", "10.98.0.0/16"])).includes("10.98.1.0/25"));
    expect(await lab.exec("worker-1", ["ip", "route", "show", "10.98.0.0/24"])).toMatch(/via 10\.30\.0\.1/);
    await until("worker-1's block withdrawn from GoBGP", async () => !(await rib())[block]);
    const status = await onWorker1(["node", "status"]);
    console.log(`[tgobgp] ${status.split("\n").find((l) => l.startsWith("10.30.0.1 ("))}`);
    expect(status).toMatch(/BGP filters\n10\.30\.0\.1 \(tor-filter\): 1 route received and rejected, [1-9]\d* routes? not sent/);
    expect(await torPeer()).toMatchObject({ established: before, filters: { names: ["tor-filter"], importRejected: 1 } });
    // weft node routes lists what the filter keeps out, as received (BIRD's show route filtered).
    const filtered = (JSON.parse(await controlGet(lab.controlSocket("worker-1"), "/routes")) as { bgpFiltered: Array<{ cidr: string; peer: string; asPath: number[] }> }).bgpFiltered;
    expect(filtered).toEqual([expect.objectContaining({ cidr: "10.98.1.0/25", peer: "10.30.0.1", asPath: [65003] })]);
    expect(await onWorker1(["node", "metrics"])).toMatch(/^weft_bgp_prefixes_filtered\{peer="10\.30\.0\.1",direction="import"\} 1$/m);
    // The filter deleted while the BGPPeer still names it: as Calico, the session runs without it, and node status says so.
    expect(await lab.weft(["delete", "bgpfilter", "tor-filter"])).toMatch(/BGPFilter\(tor-filter\) deleted/);
    await until("the /25 back", async () => (await lab.exec("worker-1", ["ip", "route", "show", "root", "10.98.0.0/16"])).includes("10.98.1.0/25"));
    await until("worker-1's block back in GoBGP", async () => !!(await rib())[block]);
    expect(await onWorker1(["node", "status"])).toContain('BGP peer problems: BGPPeer(tor-gobgp): names BGPFilter "tor-filter", which does not exist; its sessions run without it');
    expect((await torPeer()).established).toBe(before);
  });

  it("a route whose path carries worker-1's own AS (64512) is dropped as a loop, until the BGPPeer's numAllowedLocalASNumbers allows one", async () => {
    await gobgp.gobgp(["global", "rib", "add", "10.96.5.0/24", "aspath", "64512", "-a", "ipv4"]);
    await gobgp.gobgp(["global", "rib", "add", "10.96.6.0/24", "-a", "ipv4"]);
    await until("GoBGP's plain route in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.96.6.0/24"])).includes("via 10.30.0.1"));
    expect((await lab.exec("worker-1", ["ip", "route", "show", "10.96.5.0/24"])).trim()).toBe("");
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-gobgp}
spec: {peerIP: 10.30.0.1, asNumber: 65003, node: worker-1, numAllowedLocalASNumbers: 1}
`);
    const r = await until("the route through 64512 in worker-1's table", async () => (await lab.exec("worker-1", ["ip", "route", "show", "10.96.5.0/24"])).trim());
    expect(r).toMatch(/via 10\.30\.0\.1 dev eth0 proto 87/);
    const learned = (JSON.parse(await controlGet(lab.controlSocket("worker-1"), "/routes")) as { bgp: Array<{ cidr: string; asPath: number[] }> }).bgp.find((p) => p.cidr === "10.96.5.0/24");
    expect(learned?.asPath).toEqual([65003, 64512]);
  });

  it("BGPConfiguration serviceClusterIPs: every node announces the range (GoBGP has it from worker-1); no node programs a route for it, from the mesh or from GoBGP", async () => {
    await gobgp.gobgp(["global", "rib", "add", "10.101.7.0/24", "-a", "ipv4"]);
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {serviceClusterIPs: [{cidr: 10.101.0.0/16}]}
`);
    const path = await until("the service range in GoBGP", async () => (await rib())["10.101.0.0/16"]);
    console.log(`[tgobgp] 10.101.0.0/16 in GoBGP: ${JSON.stringify(path)}`);
    expect(JSON.stringify(path)).toContain("10.30.0.11");
    // master learns it over the mesh from every node, and programs nothing for it.
    const bgpOn = async (host: string) => (JSON.parse(await controlGet(lab.controlSocket(host), "/routes")) as { bgp: Array<{ cidr: string; peer: string }> }).bgp;
    await until("master's mesh paths for the range", async () => (await bgpOn("master")).some((p) => p.cidr === "10.101.0.0/16"));
    for (const host of ["master", "worker-1"]) expect((await lab.exec(host, ["ip", "route", "show", "root", "10.101.0.0/16"])).trim(), host).toBe("");
    expect((await bgpOn("worker-1")).some((p) => p.cidr === "10.101.7.0/24")).toBe(true);
  });

  it("BGPPeer localASNumber: worker-2 peers with GoBGP as AS 65100 (GoBGP's neighbor config says 65100), and its block reaches GoBGP with that AS on the path", async () => {
    await gobgp.gobgp(["neighbor", "add", "10.30.0.12", "as", "65100"]);
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-gobgp-w2}
spec: {peerIP: 10.30.0.1, asNumber: 65003, node: worker-2, localASNumber: 65100}
`);
    await until("GoBGP's session with worker-2 Established", async () => (JSON.parse(await gobgp.gobgp(["neighbor", "-j"])) as Array<{ state: { neighbor_address: string; session_state: number } }>).some((n) => n.state.neighbor_address === "10.30.0.12" && n.state.session_state === 6));
    const block = (await lab.exec("worker-2", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const path = await until("worker-2's block in GoBGP from worker-2", async () => pathFrom(block, "10.30.0.12"));
    console.log(`[tgobgp] ${block} from worker-2 in GoBGP: ${JSON.stringify(path.attrs.find((a) => a.type === 2))}`);
    expect(path.attrs.find((a) => a.type === 2)?.as_paths?.[0].asns).toEqual([65100]);
  });

  it("BGPFilter operations: worker-1's block reaches GoBGP with the AS path prepended twice and a community added (traffic engineering toward a ToR)", async () => {
    await lab.apply(`apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: tor-te}
spec:
  exportV4:
    - action: Accept
      matchOperator: In
      cidr: 192.168.0.0/16
      operations: [{addCommunity: {value: "65003:99"}}, {prependASPath: {prefix: [64512, 64512]}}]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-gobgp}
spec: {peerIP: 10.30.0.1, asNumber: 65003, node: worker-1, numAllowedLocalASNumbers: 1, filters: [tor-te]}
`);
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const attrs = await until("the prepended path in GoBGP", async () => {
      const path = await pathFrom(block);
      return path?.attrs.find((a) => a.type === 2)?.as_paths?.[0].asns.length === 3 && path.attrs;
    });
    console.log(`[tgobgp] ${block} with tor-te: ${JSON.stringify(attrs.filter((a) => a.type === 2 || a.type === 8))}`);
    expect(attrs.find((a) => a.type === 2)?.as_paths?.[0].asns).toEqual([64512, 64512, 64512]);
    expect(attrs.find((a) => a.type === 8)?.communities).toContain(((65003 << 16) | 99) >>> 0);
  });
});
