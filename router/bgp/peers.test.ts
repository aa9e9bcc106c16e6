import { describe, expect, it } from "vitest";
import { bgpConfigFor, bgpLogLevel, bgpSettings, peersFor, serviceRanges } from "./peers.js";
import type { BGPFilter, BGPPeer, NodeResource } from "../resources/kinds.js";

const node = (name: string, addr: string, labels?: Record<string, string>, rr?: string): NodeResource => ({
  apiVersion: "projectcalico.org/v3",
  kind: "Node",
  metadata: { name, labels },
  spec: { bgp: { ipv4Address: `${addr}/24`, routeReflectorClusterID: rr } },
});
const bgpPeer = (name: string, spec: BGPPeer["spec"]): BGPPeer => ({ apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name }, spec });
const s = bgpSettings([]);
const nodes = [node("master", "10.30.0.10"), node("worker-1", "10.30.0.11"), node("worker-2", "10.30.0.12"), node("worker-3", "10.30.1.13")];

describe("peering plan", () => {
  it("full mesh, AS 64512, passive toward higher addresses", () => {
    const p = peersFor("worker-1", nodes, [], s);
    expect(p.mesh.map((x) => `${x.address} ${x.passive ? "passive" : "active"} ${x.as}`)).toEqual(["10.30.0.10 active 64512", "10.30.0.12 passive 64512", "10.30.1.13 passive 64512"]);
  });

  it("route reflectors leave the mesh; a BGPPeer with peerSelector makes every node peer with them", () => {
    const ns = [...nodes.slice(1), node("master", "10.30.0.10", { "route-reflector": "true" }, "10.30.0.10")];
    const peers = [bgpPeer("to-rr", { peerSelector: "route-reflector == 'true'" })];
    const w1 = peersFor("worker-1", ns, peers, s);
    expect(w1.mesh.map((x) => x.address)).toEqual(["10.30.0.12", "10.30.1.13"]);
    expect(w1.other).toMatchObject([{ address: "10.30.0.10", type: "global", node: "master" }]);
    const rr = peersFor("master", ns, peers, s);
    expect(rr.mesh).toEqual([]);
    // The same BGPPeer, seen from the reflector: every node it applies to is a client.
    expect(rr.other.map((x) => `${x.address} ${x.rrClient ? "client" : ""}`)).toEqual(["10.30.0.11 client", "10.30.0.12 client", "10.30.1.13 client"]);
  });

  it("a BGPPeer whose selector does not parse (written around the validator) is left out whole, saying why; the others stand", () => {
    const peers = [bgpPeer("broken", { nodeSelector: "rack ==", peerSelector: "route-reflector == 'true'" }), bgpPeer("tor", { peerIP: "10.30.0.1", asNumber: 65001 })];
    const p = peersFor("worker-1", nodes, peers, s);
    expect(p.other.map((x) => x.address)).toEqual(["10.30.0.1"]);
    expect(p.mesh).toHaveLength(3);
    expect(p.problems).toEqual(['BGPPeer(broken): selector "rack ==": expected a quoted value at position 8; its sessions are not started']);
  });

  it("a BGPPeer's filters reach its sessions (mesh sessions have none); one it names that does not exist is left out and said, as Calico runs without it", () => {
    const tor: BGPFilter = { apiVersion: "projectcalico.org/v3", kind: "BGPFilter", metadata: { name: "tor" }, spec: { importV4: [{ action: "Reject", cidr: "0.0.0.0/0", matchOperator: "Equal" }], exportV6: [{ action: "Reject" }] } };
    const peers = [bgpPeer("tor", { peerIP: "10.30.0.1", asNumber: 65001, filters: ["tor", "tor-v2"] })];
    const p = peersFor("worker-1", nodes, peers, s, { filters: [tor] });
    expect(p.other[0].filters).toEqual({ names: ["tor", "tor-v2"], import: tor.spec.importV4, export: [] });
    expect(p.mesh.every((x) => x.filters === undefined)).toBe(true);
    expect(p.problems).toEqual(['BGPPeer(tor): names BGPFilter "tor-v2", which does not exist; its sessions run without it']);
  });

  it("a BGPPeer's localASNumber and next-hop settings reach its session (the AS this node speaks as; keepOriginalNextHop is nextHopMode Keep, Auto is the default)", () => {
    const peers = [
      bgpPeer("tor", { peerIP: "10.30.0.1", asNumber: 65003, localASNumber: 65100, keepOriginalNextHop: true }),
      bgpPeer("tor-b", { peerIP: "10.30.0.2", asNumber: 65003, keepOriginalNextHop: false }),
      bgpPeer("tor-c", { peerIP: "10.30.0.3", asNumber: 65003, nextHopMode: "Self" }),
      bgpPeer("tor-d", { peerIP: "10.30.0.4", asNumber: 65003, nextHopMode: "Auto" }),
    ];
    expect(peersFor("worker-1", nodes, peers, s).other).toEqual([
      { address: "10.30.0.1", port: 179, as: 65003, type: "global", passive: false, localAs: 65100, nextHopMode: "Keep" },
      { address: "10.30.0.2", port: 179, as: 65003, type: "global", passive: false },
      { address: "10.30.0.3", port: 179, as: 65003, type: "global", passive: false, nextHopMode: "Self" },
      { address: "10.30.0.4", port: 179, as: 65003, type: "global", passive: false },
    ]);
  });

  it("reachableBy pins the route to an external peer through its gateway, for the nodes the BGPPeer applies to (a peer that is a node is not pinned)", () => {
    const peers = [bgpPeer("tor-lo", { peerIP: "10.30.9.1", asNumber: 65001, node: "worker-1", reachableBy: "10.30.0.1" }), bgpPeer("to-master", { peerIP: "10.30.0.10", asNumber: 64512, reachableBy: "10.30.0.1" })];
    expect(peersFor("worker-1", nodes, peers, s).pinned).toEqual([{ address: "10.30.9.1", via: "10.30.0.1", bgpPeer: "tor-lo" }]);
    expect(peersFor("worker-2", nodes, peers, s).pinned).toEqual([]);
  });

  it("an external router by peerIP:port and AS, for one node only", () => {
    const peers = [bgpPeer("tor", { peerIP: "10.30.0.1:1179", asNumber: 65001, node: "worker-1" })];
    expect(peersFor("worker-1", nodes, peers, s).other).toEqual([{ address: "10.30.0.1", port: 1179, as: 65001, type: "node specific", passive: false }]);
    expect(peersFor("worker-2", nodes, peers, s).other).toEqual([]);
  });

  it("a BGPPeer's password (plain, or Calico's secretKeyRef read from /etc/weft/secrets/NAME/KEY), keepaliveTime, maxRestartTime and sourceAddress reach its sessions; an unreadable secret leaves the peer out, saying why", () => {
    const secrets: Record<string, string> = { "bgp-secrets/tor": "from-a-secret" };
    const read = (name: string, key: string) => secrets[`${name}/${key}`];
    const peers = [
      bgpPeer("tor-a", { peerIP: "10.30.0.1", asNumber: 65001, node: "worker-1", password: "plain", keepaliveTime: "10s", maxRestartTime: "5m" }),
      bgpPeer("tor-b", { peerIP: "10.30.0.2", asNumber: 65001, node: "worker-1", password: { secretKeyRef: { name: "bgp-secrets", key: "tor" } }, sourceAddress: "None" }),
      bgpPeer("tor-c", { peerIP: "10.30.0.3", asNumber: 65001, node: "worker-1", password: { secretKeyRef: { name: "bgp-secrets", key: "missing" } } }),
    ];
    const plan = peersFor("worker-1", nodes, peers, s, { secret: read });
    expect(plan.other).toEqual([
      { address: "10.30.0.1", port: 179, as: 65001, type: "node specific", passive: false, password: "plain", keepaliveTime: 10, restartTime: 300 },
      { address: "10.30.0.2", port: 179, as: 65001, type: "node specific", passive: false, password: "from-a-secret", anySource: true },
    ]);
    expect(plan.problems).toEqual(["BGPPeer(tor-c): its password secret /etc/weft/secrets/bgp-secrets/missing cannot be read; its sessions are not started"]);
  });

  it("BGPConfiguration nodeMeshPassword puts one TCP MD5 key on every mesh session (not on a BGPPeer's, which has its own); an unreadable secret leaves the mesh out, saying why", () => {
    const read = (name: string, key: string) => (name === "bgp-secrets" && key === "mesh" ? "mesh-key" : undefined);
    const conf = (nodeMeshPassword: unknown) => bgpSettings([{ apiVersion: "projectcalico.org/v3", kind: "BGPConfiguration", metadata: { name: "default" }, spec: { nodeMeshPassword } } as never]);
    const tor = bgpPeer("tor", { peerIP: "10.30.0.1", asNumber: 65001, node: "worker-1" });
    const plan = peersFor("worker-1", nodes, [tor], conf({ secretKeyRef: { name: "bgp-secrets", key: "mesh" } }), { secret: read });
    expect(plan.mesh.map((p) => [p.address, p.password])).toEqual([["10.30.0.10", "mesh-key"], ["10.30.0.12", "mesh-key"], ["10.30.1.13", "mesh-key"]]);
    expect(plan.other).toEqual([{ address: "10.30.0.1", port: 179, as: 65001, type: "node specific", passive: false }]);
    expect(peersFor("worker-1", nodes, [], conf("plain-key"), { secret: read }).mesh.every((p) => p.password === "plain-key")).toBe(true);
    const missing = peersFor("worker-1", nodes, [tor], conf({ secretKeyRef: { name: "bgp-secrets", key: "gone" } }), { secret: read });
    expect(missing.mesh).toEqual([]);
    expect(missing.other).toHaveLength(1);
    expect(missing.problems).toEqual(["BGPConfiguration(default) nodeMeshPassword: its password secret /etc/weft/secrets/bgp-secrets/gone cannot be read; the node-to-node mesh sessions are not started"]);
  });

  it("BGPConfiguration logSeverityScreen sets the BGP speaker's log level", () => {
    const cfg = (sev?: "Debug" | "Warning") => [{ apiVersion: "projectcalico.org/v3" as const, kind: "BGPConfiguration" as const, metadata: { name: "default" }, spec: { logSeverityScreen: sev } }];
    expect(bgpLogLevel(cfg("Debug"))).toBe("debug");
    expect(bgpLogLevel(cfg("Warning"))).toBe("warn");
    expect(bgpLogLevel(cfg())).toBeUndefined();
  });

  it("reads BGPConfiguration: AS, mesh switch, port, restart time", () => {
    expect(bgpSettings([{ apiVersion: "projectcalico.org/v3", kind: "BGPConfiguration", metadata: { name: "default" }, spec: { asNumber: 65000, nodeToNodeMeshEnabled: false, listenPort: 1790, nodeMeshMaxRestartTime: "2m", bindMode: "NodeIP" } }])).toEqual({ as: 65000, meshEnabled: false, listenPort: 1790, restartTime: 120, meshPassword: undefined, bindNodeIP: true });
  });
});

describe("a node's own BGPConfiguration (node.<name>)", () => {
  it("overrides listenPort, logSeverityScreen and prefixAdvertisements for that node only; the rest is the default's", () => {
    const conf = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "projectcalico.org/v3" as const, kind: "BGPConfiguration" as const, metadata: { name }, spec });
    const configs = [conf("default", { asNumber: 65000, listenPort: 1790, communities: [{ name: "rack", value: "65000:1" }], prefixAdvertisements: [{ cidr: "10.0.0.0/8", communities: ["rack"] }] }), conf("node.w1", { listenPort: 1791, logSeverityScreen: "Debug", prefixAdvertisements: [{ cidr: "10.0.0.0/8", communities: ["65000:2"] }] })];
    expect(bgpSettings(configs, "w1")).toMatchObject({ as: 65000, listenPort: 1791 });
    expect(bgpSettings(configs, "w2")).toMatchObject({ as: 65000, listenPort: 1790 });
    expect(bgpLogLevel(configs, "w1")).toBe("debug");
    expect(bgpLogLevel(configs, "w2")).toBeUndefined();
    expect(bgpConfigFor(configs, "w1")).toMatchObject({ communities: [{ name: "rack", value: "65000:1" }], prefixAdvertisements: [{ cidr: "10.0.0.0/8", communities: ["65000:2"] }] });
    expect(bgpConfigFor(configs, "w2")?.prefixAdvertisements).toEqual([{ cidr: "10.0.0.0/8", communities: ["rack"] }]);
  });
});

describe("service ranges", () => {
  it("the IPv4 ranges of serviceClusterIPs, serviceExternalIPs and serviceLoadBalancerIPs, once each (IPv6 ones are not carried)", () => {
    expect(serviceRanges({ serviceClusterIPs: [{ cidr: "10.96.0.0/12" }, { cidr: "fd00:96::/112" }], serviceExternalIPs: [{ cidr: "203.0.113.0/24" }], serviceLoadBalancerIPs: [{ cidr: "10.96.0.0/12" }] })).toEqual(["10.96.0.0/12", "203.0.113.0/24"]);
    expect(serviceRanges(undefined)).toEqual([]);
  });
});
