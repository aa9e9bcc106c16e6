import { describe, expect, it } from "vitest";
import { clusterState, encapsulationFor, remoteFromBgp, tunnelMTU, withRestartSeed } from "./cluster.js";
import type { RemoteBlock } from "./desired.js";
import type { IPPool, NodeResource } from "../resources/kinds.js";
import type { Block } from "../ipam/ipam.js";

const pool = (ipipMode: string, vxlanMode = "Never", natOutgoing = true): IPPool => ({
  apiVersion: "projectcalico.org/v3",
  kind: "IPPool",
  metadata: { name: "default-ipv4-ippool" },
  spec: { cidr: "192.168.0.0/16", blockSize: 26, ipipMode: ipipMode as never, vxlanMode: vxlanMode as never, natOutgoing, disabled: false, disableBGPExport: false, nodeSelector: "all()" },
});
const node = (name: string, addr: string): NodeResource => ({ apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name }, spec: { bgp: { ipv4Address: addr } } });
const block = (cidr: string, owner: string, allocations: Block["allocations"] = {}): Block => ({ cidr, pool: "default-ipv4-ippool", affinity: `host:${owner}`, allocations });

const nodes = [node("worker-1", "10.30.0.11/24"), node("worker-2", "10.30.0.12/24"), node("worker-3", "10.30.1.13/24")];
const blocks = [block("192.168.226.64/26", "worker-1"), block("192.168.133.192/26", "worker-2"), block("192.168.97.192/26", "worker-3")];

describe("cluster desired state (seen from worker-1)", () => {
  const encaps = (p: IPPool) => Object.fromEntries(clusterState("worker-1", { pools: [p], nodes, blocks }).remote.map((r) => [r.node, r.encapsulation]));

  it("Never: everything direct", () => expect(encaps(pool("Never"))).toEqual({ "worker-2": "None", "worker-3": "None" }));
  it("CrossSubnet: worker-2 direct, worker-3 (other subnet) IPIP", () => expect(encaps(pool("CrossSubnet"))).toEqual({ "worker-2": "None", "worker-3": "IPIP" }));
  it("VXLAN Always: everything VXLAN", () => expect(encaps(pool("Never", "Always"))).toEqual({ "worker-2": "VXLAN", "worker-3": "VXLAN" }));

  it("keeps its own block local (blackhole) and knows the other nodes", () => {
    const s = clusterState("worker-1", { pools: [pool("Always")], nodes, blocks });
    expect(s.localBlocks).toEqual(["192.168.226.64/26"]);
    expect(s.knownNodes.sort()).toEqual(["10.30.0.12", "10.30.1.13"]);
    expect(s.masqPools).toEqual(["192.168.0.0/16"]);
  });

  it("routes from BGP: a pod block toward its node, encapsulated; anything else (an external router's, a node's non-pool prefix) as a plain route beside the host's own", () => {
    const view = { pools: [pool("Always")], nodes, blocks };
    const r = remoteFromBgp("worker-1", view, [
      { prefix: "192.168.133.192/26", nextHop: "10.30.0.12" },
      { prefix: "10.96.0.0/12", nextHop: "10.30.0.12" },
      { prefix: "10.99.0.0/24", nextHop: "10.30.0.1" },
    ]);
    expect(r.map((x) => [x.cidr, x.encapsulation, !!x.external])).toEqual([
      ["192.168.133.192/26", "IPIP", false],
      ["10.96.0.0/12", "None", true],
      ["10.99.0.0/24", "None", true],
    ]);
  });

  it("a node registered as /32 is never same-subnet, so CrossSubnet encapsulates", () => {
    expect(encapsulationFor(pool("CrossSubnet"), "10.30.0.11/32", "10.30.0.12")).toBe("IPIP");
  });

  it("routes a borrowed address as a /32 to the node that holds it", () => {
    const b = [block("192.168.133.192/26", "worker-2", { "5": { handle: "p", node: "worker-3" } })];
    const s = clusterState("worker-1", { pools: [pool("Always")], nodes, blocks: b });
    expect(s.remote.map((r) => `${r.cidr}->${r.node}`).sort()).toEqual(["192.168.133.192/26->worker-2", "192.168.133.197/32->worker-3"]);
  });

  it("takes a Node address given without a prefix (as Calico allows) as a /32: CrossSubnet then encapsulates everything from it", () => {
    const bare = [node("worker-1", "10.30.0.11"), node("worker-2", "10.30.0.12/24"), node("worker-3", "10.30.1.13/24")];
    const s = clusterState("worker-1", { pools: [pool("CrossSubnet")], nodes: bare, blocks });
    expect(Object.fromEntries(s.remote.map((r) => [r.node, r.encapsulation]))).toEqual({ "worker-2": "IPIP", "worker-3": "IPIP" });
    expect(s.knownNodes.sort()).toEqual(["10.30.0.12", "10.30.1.13"]);
  });

  it("treats a Node stored with an address or MAC that does not parse as not registered, or uses the derived MAC", () => {
    const bad = [node("worker-1", "10.30.0.11/24"), node("worker-2", "10.30.0.300/24"), { ...node("worker-3", "10.30.1.13/24"), spec: { bgp: { ipv4Address: "10.30.1.13/24" }, vxlanTunnelMACAddr: "zz" } }];
    const s = clusterState("worker-1", { pools: [pool("Never", "Always")], nodes: bad, blocks });
    expect(s.remote.map((r) => r.node)).toEqual(["worker-3"]);
    expect(s.remote[0].vtepMAC).toMatch(/^66:/);
    expect(s.knownNodes).toEqual(["10.30.1.13"]);
  });
});

describe("weft0's MTU (tunnelMTU)", () => {
  it("is the uplink's minus the overhead of the enabled encapsulation, the smaller when both are", () => {
    expect(tunnelMTU(1500, { ipip: true, vxlan: false })).toBe(1480);
    expect(tunnelMTU(1500, { ipip: false, vxlan: true })).toBe(1450);
    expect(tunnelMTU(1500, { ipip: true, vxlan: true })).toBe(1450);
    expect(tunnelMTU(9001, { ipip: false, vxlan: false })).toBe(8981);
  });

  it("takes Calico's FELIX_IPINIPMTU / FELIX_VXLANMTU for the encapsulations that are enabled only", () => {
    expect(tunnelMTU(1500, { ipip: false, vxlan: true }, { vxlan: 1400 })).toBe(1400);
    expect(tunnelMTU(1500, { ipip: false, vxlan: true }, { ipip: 1300 })).toBe(1450);
    expect(tunnelMTU(1500, { ipip: true, vxlan: true }, { ipip: 1300 })).toBe(1300);
    expect(tunnelMTU(1500, { ipip: true, vxlan: false }, { ipip: 1440, vxlan: 1300 })).toBe(1440);
  });
});

describe("a restarted node's routes until its peers' are back (withRestartSeed)", () => {
  const block = (cidr: string, node: string, extra: Partial<RemoteBlock> = {}): RemoteBlock => ({ cidr, node, address: `10.30.0.${node.length}`, encapsulation: "IPIP", ...extra });
  const pools = [
    { metadata: { name: "p" }, spec: { cidr: "192.168.0.0/16", disableBGPExport: false } },
    { metadata: { name: "quiet" }, spec: { cidr: "10.250.0.0/16", disableBGPExport: true } },
  ] as unknown as IPPool[];

  it("adds the datastore's blocks BGP has not given yet; BGP's own win; none of a pool BGP does not carry, nor external routes", () => {
    const fromBgp = [block("192.168.1.0/26", "worker-2", { encapsulation: "VXLAN" })];
    const fromDatastore = [block("192.168.1.0/26", "worker-2"), block("192.168.2.0/26", "worker-3"), block("10.250.0.0/26", "worker-3"), block("192.168.3.0/26", "x", { external: true })];
    expect(withRestartSeed(fromBgp, fromDatastore, pools).map((r) => `${r.cidr} ${r.encapsulation}`)).toEqual(["192.168.1.0/26 VXLAN", "192.168.2.0/26 IPIP"]);
    expect(withRestartSeed([], [], pools)).toEqual([]);
  });
});

