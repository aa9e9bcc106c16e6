import { describe, expect, it } from "vitest";
import { dropPolicyChains, podDropCounts, weftRuleset, weftTableWhole } from "./nft.js";
import { inputSpec } from "./iptables.js";

describe("nftables forward and input chains that drop by policy", () => {
  // As `nft -j list chains` printed it on a host with Docker's iptables-nft DROP policy
  // and an nftables firewall of its own.
  const listed = JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } },
      { chain: { family: "ip", table: "filter", name: "FORWARD", handle: 1, type: "filter", hook: "forward", prio: 0, policy: "drop" } },
      { chain: { family: "inet", table: "filter", name: "forward", handle: 1, type: "filter", hook: "forward", prio: 0, policy: "drop" } },
      { chain: { family: "inet", table: "filter", name: "input", handle: 2, type: "filter", hook: "input", prio: 0, policy: "drop" } },
      { chain: { family: "inet", table: "fw", name: "fwd", handle: 3, type: "filter", hook: "forward", prio: 0, policy: "accept" } },
      { chain: { family: "inet", table: "fw", name: "regular", handle: 4 } },
      { chain: { family: "ip", table: "filter", name: "INPUT", handle: 5, type: "filter", hook: "input", prio: 0, policy: "drop" } },
    ],
  });

  it("names the nftables ones, not iptables' FORWARD or INPUT (weft's jumps are there) nor accept policies or other hooks", () => {
    expect(dropPolicyChains(listed, "forward")).toEqual(["inet filter forward"]);
    expect(dropPolicyChains(listed, "input")).toEqual(["inet filter input"]);
  });

  it("nothing listed, or not JSON, nothing named", () => {
    for (const none of ["", '{"nftables":[]}', "garbage"]) expect(dropPolicyChains(none, "input")).toEqual([]);
  });
});

describe("weft's nftables table", () => {
  it("masquerades from natOutgoing pools to outside every pool, replaced whole", () => {
    const r = weftRuleset({ masqPools: ["10.244.0.0/16"], allPools: ["10.244.0.0/16", "10.245.0.0/16"] });
    expect(r).toContain("delete table ip weft");
    expect(r).toContain("set masq-pools { type ipv4_addr; flags interval; elements = { 10.244.0.0/16 } }");
    expect(r).toContain("ip saddr @masq-pools ip daddr != @all-pools masquerade");
    expect(r).not.toContain("hook input");
  });

  it("marks IPIP and VXLAN from the nodes, looked up in a hashed set before iptables' filter INPUT; WEFT-INPUT is one rule on that bit", () => {
    const nodes = Array.from({ length: 500 }, (_, i) => `10.30.${i >> 8}.${i & 255}`);
    const r = weftRuleset({ masqPools: [], allPools: [], tunnel: { nodes, mark: 0x10000, vxlanPort: 4789 } });
    expect(r).toContain(`set nodes { type ipv4_addr; elements = { ${nodes.join(", ")} } }`);
    expect(r).toContain("type filter hook input priority mangle; policy accept;");
    expect(r).toContain("ip protocol 4 ip saddr @nodes meta mark set meta mark or 0x10000");
    expect(r).toContain("ip saddr @nodes udp dport 4789 meta mark set meta mark or 0x10000");
    expect(inputSpec(0x10000).rules).toEqual([["-m", "mark", "--mark", "0x10000/0x10000", "-j", "ACCEPT"]]);
    // No nodes yet: an empty set, nothing marked.
    expect(weftRuleset({ masqPools: [], allPools: [], tunnel: { nodes: [], mark: 0x80000000, vxlanPort: 4789 } })).toContain("set nodes { type ipv4_addr; }");
    expect(inputSpec(0x80000000).rules[0]).toContain("0x80000000/0x80000000");
  });

  it("drops, counted, IPIP and VXLAN sent by pods ahead of iptables' FORWARD (masqueraded, other nodes would take them for a node's), and pods' packets with a source not theirs before conntrack", () => {
    const r = weftRuleset({ masqPools: [], allPools: [], tunnel: { nodes: [], mark: 0x10000, vxlanPort: 4789 } });
    expect(r).toContain("type filter hook prerouting priority raw; policy accept;");
    expect(r).toContain(`iifname "cali*" fib saddr . iif oif missing counter name "pod-spoofed-source" drop comment "weft: a pod's packet with another's source"`);
    for (const c of ["pod-ipip", "pod-vxlan", "pod-spoofed-source"]) expect(r).toContain(`  counter ${c} { }`);
    // A kernel without nftables' fib expression: the rest, without the source check.
    const noFib = weftRuleset({ masqPools: [], allPools: [], tunnel: { nodes: [], mark: 0x10000, vxlanPort: 4789, sourceCheck: false } });
    expect(noFib).not.toContain("fib");
    expect(noFib).toContain('iifname "cali*" ip protocol 4 counter name "pod-ipip" drop');
    expect(r).toContain("type filter hook forward priority -5; policy accept;");
    expect(r).toContain('iifname "cali*" ip protocol 4 counter name "pod-ipip" drop comment "weft: IPIP from a pod"');
    expect(r).toContain('iifname "cali*" udp dport 4789 counter name "pod-vxlan" drop comment "weft: VXLAN from a pod"');
  });

  it("reads the drops back from nft -j list counters output; nothing counted when a counter is missing, or the output is not JSON", () => {
    // As nft 1.0.6 printed them.
    const listed = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6", json_schema_version: 1 } },
        { counter: { family: "ip", name: "pod-ipip", table: "weft", handle: 7, packets: 5, bytes: 240 } },
        { counter: { family: "ip", name: "pod-vxlan", table: "weft", handle: 8, packets: 7, bytes: 700 } },
        { counter: { family: "ip", name: "someone-elses", table: "weft", handle: 9, packets: 99, bytes: 1 } },
      ],
    });
    expect(podDropCounts(listed)).toEqual({ ipip: 5, vxlan: 7, spoofed_source: 0 });
    for (const none of ["", "not json", '{"nftables":[]}', '{"nftables":[{"counter":{"name":"pod-ipip"}}]}']) expect(podDropCounts(none), none).toEqual({ ipip: 0, vxlan: 0, spoofed_source: 0 });
  });

  it("is whole only with every chain and all its rules (the periodic check puts back a chain or rule someone deleted)", () => {
    const t = { masqPools: [], allPools: [], tunnel: { nodes: ["10.30.0.12"], mark: 0x10000, vxlanPort: 4789 } };
    const chain = (name: string) => ({ chain: { family: "ip", table: "weft", name } });
    const rule = (chain: string) => ({ rule: { family: "ip", table: "weft", chain, expr: [] } });
    const whole = [chain("postrouting"), chain("input"), chain("prerouting"), chain("forward"), rule("postrouting"), rule("input"), rule("input"), rule("prerouting"), rule("forward"), rule("forward")];
    expect(weftTableWhole(JSON.stringify({ nftables: whole }), t)).toBe(true);
    expect(weftTableWhole(JSON.stringify({ nftables: whole.filter((e) => !("chain" in e && e.chain.name === "forward")).slice(0, -2) }), t)).toBe(false);
    expect(weftTableWhole(JSON.stringify({ nftables: whole.slice(0, -1) }), t)).toBe(false);
    expect(weftTableWhole("", t)).toBe(false);
    expect(weftTableWhole("garbage", t)).toBe(false);
    // Without the tunnel part (no firewall asked), postrouting is all there is to have.
    expect(weftTableWhole(JSON.stringify({ nftables: [chain("postrouting"), rule("postrouting")] }), { masqPools: [], allPools: [] })).toBe(true);
  });
});
