import { describe, expect, it } from "vitest";
import { nodeStatusText } from "./format.js";

describe("weft node status", () => {
  it("prints Calico's table", () => {
    const since = new Date(2026, 0, 1, 18, 42, 27);
    const text = nodeStatusText({ enabled: true, peers: [{ address: "10.30.0.206", type: "node-to-node mesh", state: "up", since, info: "Established" }] });
    expect(text).toBe(`weft process is running.

IPv4 BGP status
+--------------+-------------------+-------+----------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+--------------+-------------------+-------+----------+-------------+
| 10.30.0.206  | node-to-node mesh | up    | 18:42:27 | Established |
+--------------+-------------------+-------+----------+-------------+

IPv6 BGP status
No IPv6 peers found.
`);
  });

  it("says what the host refused when a route or rule could not be applied (not blaming the datastore)", () => {
    const text = nodeStatusText({ enabled: false, peers: [] }, { datastore: { url: "sqlite:/x.db", reachable: true }, applyError: "ip route replace 10.77.0.0/24 via 10.30.0.11 dev eth0: Error: Nexthop has invalid gateway." });
    expect(text).not.toMatch(/Datastore/);
    expect(text).toMatch(/This host refused part of the routes or rules \(the rest is applied; retrying\): ip route replace 10\.77\.0\.0\/24/);
  });

  it("says when the node's address left the host, first (nothing else works without it)", () => {
    const gone = "its address 10.30.0.11 (given (IP)) is on no interface of this host: other nodes cannot reach it or its pods; put the address back, or restart the node with the one it has now";
    const text = nodeStatusText({ enabled: false, peers: [] }, { datastore: { url: "sqlite:/x.db", reachable: true }, addressProblem: gone, applyError: "x" });
    expect(text).toMatch(new RegExp(`^weft process is running\\.\\n\\nThis node cannot be reached: its address 10\\.30\\.0\\.11 \\(given \\(IP\\)\\) is on no interface`));
    expect(nodeStatusText({ enabled: false, peers: [] }, { addressProblem: null })).not.toMatch(/cannot be reached/);
  });

  it("names the datastore records it skips (and says nothing of them when there are none)", () => {
    const bgp = { enabled: false, peers: [] };
    expect(nodeStatusText(bgp, { datastore: { url: "sqlite:/x.db", reachable: true }, unreadableRecords: {} })).not.toMatch(/records/);
    expect(nodeStatusText(bgp, { datastore: { url: "sqlite:/x.db", reachable: true }, unreadableRecords: { "/weft/ipam/blocks/10.9.0.0-26": "not JSON" } })).toMatch(/^weft process is running\.\n\nDatastore records weft cannot read are skipped \(fix or delete them\): \/weft\/ipam\/blocks\/10\.9\.0\.0-26\n/);
  });

  it("names the BGP peers it left out and why (an unreadable password secret), above the peer table", () => {
    const bgp = { enabled: true, peers: [] };
    const problem = "BGPConfiguration(default) nodeMeshPassword: its password secret /etc/weft/secrets/bgp/mesh cannot be read; the node-to-node mesh sessions are not started";
    expect(nodeStatusText(bgp, { peerProblems: [] })).not.toMatch(/problems/);
    expect(nodeStatusText(bgp, { peerProblems: [problem] })).toBe(`weft process is running.\n\nBGP peer problems: ${problem}\n\nIPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n`);
  });

  it("says under the peer table what each peer's BGPFilters held back, both ways (peers without filters are not listed)", () => {
    const peer = { address: "10.30.0.1", type: "global", state: "up", since: new Date(), info: "Established" };
    const bgp = { enabled: true, peers: [{ ...peer, filters: { names: ["tor", "tor-v2"], importRejected: 1, exportRejected: 2 } }, { ...peer, address: "10.30.0.12" }] };
    expect(nodeStatusText(bgp)).toMatch(/\+\n\nBGP filters\n10\.30\.0\.1 \(tor, tor-v2\): 1 route received and rejected, 2 routes not sent\n\nIPv6 BGP status/);
    expect(nodeStatusText({ enabled: true, peers: [peer] })).not.toMatch(/BGP filters/);
  });

  it("names the nodes toward which a router takes less than the uplink (nothing when there are none)", () => {
    const bgp = { enabled: false, peers: [] };
    expect(nodeStatusText(bgp, { pathMTUs: {} })).not.toMatch(/path MTU/);
    expect(nodeStatusText(bgp, { pathMTUs: { "10.30.1.13": 1400 }, uplink: { mtu: 1500 } })).toMatch(/^weft process is running\.\n\nSmaller path MTUs \(from ICMP fragmentation-needed; pods are told the tunnel MTU below them\): 10\.30\.1\.13 1400 \(uplink 1500\)\n/);
  });

  it("names what this host's pods sent that weft dropped (nothing when none)", () => {
    const bgp = { enabled: false, peers: [] };
    expect(nodeStatusText(bgp, { podDrops: { ipip: 0, vxlan: 0, spoofed_source: 0 } })).not.toMatch(/Dropped/);
    expect(nodeStatusText(bgp, { podDrops: { ipip: 5, vxlan: 0, spoofed_source: 2 } })).toMatch(/^weft process is running\.\n\nDropped from this host's pods: 5 IPIP packets, 2 packets with another's source address \(weft_pod_packets_dropped_total\)\n/);
  });

  it("says so when the datastore is not answering (and nothing extra when it is)", () => {
    const bgp = { enabled: false, peers: [] };
    expect(nodeStatusText(bgp, { datastore: { url: "etcd://10.30.0.1:2379", reachable: true } })).not.toMatch(/Datastore/);
    expect(nodeStatusText(bgp, { datastore: { url: "etcd://10.30.0.1:2379", reachable: false } })).toMatch(/^weft process is running\.\n\nDatastore etcd:\/\/10\.30\.0\.1:2379 is not answering: forwarding continues with the last state it gave\.\n/);
    // With BGP, routes from BGP still follow it meanwhile.
    expect(nodeStatusText({ enabled: true, peers: [] }, { datastore: { url: "etcd://10.30.0.1:2379", reachable: false } })).toMatch(/is not answering: forwarding continues with the last state it gave; what BGP brings is still applied\.\n/);
  });

  it("says why the datastore is away: no answer, or a refusal that only configuration fixes", () => {
    const bgp = { enabled: true, peers: [] };
    expect(nodeStatusText(bgp, { datastore: { url: "etcd://10.30.0.1:2379", reachable: false, reason: "connect ECONNREFUSED 10.30.0.1:2379", refused: false } })).toMatch(/Datastore etcd:\/\/10\.30\.0\.1:2379 is not answering \(connect ECONNREFUSED 10\.30\.0\.1:2379\): forwarding continues/);
    const refused = nodeStatusText(bgp, { datastore: { url: "etcd://10.30.0.1:2379", reachable: false, reason: "etcd refused the user name or password (ETCD_USERNAME, ETCD_PASSWORD)", refused: true } });
    expect(refused).toMatch(/Datastore etcd:\/\/10\.30\.0\.1:2379 refuses weft \(etcd refused the user name or password \(ETCD_USERNAME, ETCD_PASSWORD\)\): forwarding continues with the last state it gave; what BGP brings is still applied\./);
    expect(refused).not.toMatch(/not answering/);
  });
});
