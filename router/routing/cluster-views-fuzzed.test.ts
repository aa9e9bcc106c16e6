// What a node computes from the datastore at every sync, fed records of the right
// shape but any content (as a hand edit in etcd or an older version may leave them):
// the computation never throws (a throw would stop the node following the datastore),
// and what it would install is well formed.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCIDR } from "../dataplane/addr.js";
import { bgpExports, clusterState, remoteFromBgp } from "./cluster.js";
import { desiredState } from "./desired.js";
import { bgpSettings, peersFor } from "../bgp/peers.js";
import type { Block } from "../ipam/ipam.js";
import type { BGPConfiguration, BGPPeer, IPPool, NodeResource } from "../resources/kinds.js";

const RUNS = 3000;
const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("", "garbage", "10.0.0.0/33", "10.0.0.1/8", "::/0", "fd00::/64", "300.1.1.1", "0.0.0.0/0"));
const cidr = fc.oneof(fc.constantFrom("192.168.0.0/16", "10.244.0.0/16", "10.30.0.0/24", "192.168.1.0/26", "192.168.1.64/26", "10.244.3.0/26"), junk);
const address = fc.oneof(fc.constantFrom("10.30.0.11/24", "10.30.0.12/24", "10.30.1.13/24", "10.30.0.11", "10.30.0.14/32"), junk);
const mode = fc.oneof(fc.constantFrom("Always", "CrossSubnet", "Never"), junk);
const selector = fc.oneof(fc.constantFrom("all()", "rack == 'a'", "!has(rr)", ""), junk);
const name = fc.constantFrom("w1", "w2", "w3", "w4");

const pool: fc.Arbitrary<IPPool> = fc
  .record({ name: fc.constantFrom("p1", "p2", "p3"), cidr, ipipMode: mode, vxlanMode: mode, natOutgoing: fc.boolean(), disabled: fc.boolean(), disableBGPExport: fc.boolean(), nodeSelector: selector, blockSize: fc.oneof(fc.constant(26), fc.integer({ min: -5, max: 200 })) })
  .map(({ name: n, ...spec }) => ({ apiVersion: "projectcalico.org/v3", kind: "IPPool", metadata: { name: n }, spec }) as unknown as IPPool);
const node: fc.Arbitrary<NodeResource> = fc
  .record({ name, address: fc.option(address), as: fc.option(fc.oneof(fc.constant(64512), fc.integer())), rr: fc.option(fc.oneof(fc.constant("10.30.0.1"), junk)), labels: fc.dictionary(fc.constantFrom("rack", "rr", "constructor"), fc.constantFrom("a", "true")), mac: fc.option(fc.oneof(fc.constant("66:00:00:00:00:01"), junk)) })
  .map(({ name: n, address: a, as, rr, labels, mac }) => ({ apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name: n, labels }, spec: { bgp: { ...(a !== null ? { ipv4Address: a } : {}), ...(as !== null ? { asNumber: as } : {}), ...(rr !== null ? { routeReflectorClusterID: rr } : {}) }, ...(mac !== null ? { vxlanTunnelMACAddr: mac } : {}) } }) as unknown as NodeResource);
// Blocks are read through parseBlocks, which keeps only those whose CIDR parses.
const block: fc.Arbitrary<Block> = fc.record({
  cidr: fc.constantFrom("192.168.1.0/26", "192.168.1.64/26", "10.244.3.0/26", "10.30.0.0/26", "172.16.0.0/26"),
  pool: fc.constantFrom("p1", "p2", "p3", "gone"),
  affinity: fc.oneof(fc.constant(null), name.map((n) => `host:${n}`), junk),
  allocations: fc.dictionary(fc.oneof(fc.constantFrom("0", "1", "63", "64"), fc.integer({ min: -3, max: 300 }).map(String)), fc.record({ handle: fc.constantFrom("h1", "tunnel-addr-w1"), node: name })),
});
const bgpPeer: fc.Arbitrary<BGPPeer> = fc
  .record({ peerIP: fc.option(fc.oneof(fc.constantFrom("10.30.0.1", "10.30.0.1:1179"), junk)), asNumber: fc.option(fc.integer()), node: fc.option(name), nodeSelector: fc.option(selector), peerSelector: fc.option(selector), keepaliveTime: fc.option(fc.oneof(fc.constant("10s"), junk)), maxRestartTime: fc.option(fc.oneof(fc.constant("2m"), junk)) })
  .map((spec) => ({ apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name: "peer" }, spec: Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== null)) }) as unknown as BGPPeer);
const config: fc.Arbitrary<BGPConfiguration> = fc
  .record({ asNumber: fc.option(fc.integer()), nodeToNodeMeshEnabled: fc.option(fc.boolean()), listenPort: fc.option(fc.integer({ min: -1, max: 70000 })), nodeMeshMaxRestartTime: fc.option(fc.oneof(fc.constant("120s"), junk)) })
  .map((spec) => ({ apiVersion: "projectcalico.org/v3", kind: "BGPConfiguration", metadata: { name: "default" }, spec: Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== null)) }) as unknown as BGPConfiguration);
// BGP paths come from the wire decoder: prefixes and next hops are always well formed.
const best = fc.array(fc.record({ prefix: fc.constantFrom("192.168.0.0/16", "192.168.1.0/26", "192.168.1.64/26", "10.244.3.0/26", "10.30.0.0/24", "0.0.0.0/0", "10.30.0.11/32"), nextHop: fc.constantFrom("10.30.0.11", "10.30.0.12", "10.30.1.13", "10.30.0.1") }), { maxLength: 6 });

describe("a node's computation from any datastore content", () => {
  it(`never throws, and every route it would install is a valid CIDR (${RUNS} cluster views)`, () => {
    fc.assert(
      fc.property(fc.array(pool, { maxLength: 3 }), fc.array(node, { maxLength: 4 }), fc.array(block, { maxLength: 6 }), fc.array(bgpPeer, { maxLength: 2 }), fc.array(config, { maxLength: 1 }), best, name, (pools, nodes, blocks, peers, configs, paths, me) => {
        const view = { pools, nodes, blocks };
        const state = clusterState(me, view);
        bgpExports(me, view);
        const fromBgp = remoteFromBgp(me, view, paths);
        const settings = bgpSettings(configs);
        peersFor(me, nodes, peers, settings, { secret: () => "secret" });
        for (const remote of [state.remote, fromBgp]) {
          const want = desiredState({ address: "10.30.0.11", tunnelDevice: "weft0", uplink: "eth0" }, remote, state.localBlocks);
          for (const r of want.kernel) expect(parseCIDR(r.dst, false), `kernel route ${r.dst}`).toBeDefined();
        }
      }),
      { numRuns: RUNS },
    );
  });
});
