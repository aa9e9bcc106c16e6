import { describe, expect, it } from "vitest";
import { dropPolicyForwardChains, natRuleset } from "./nft.js";

describe("nftables forward chains that drop by policy", () => {
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
    ],
  });

  it("names the nftables ones, not iptables' FORWARD (weft's jump is there) nor accept policies or other hooks", () => {
    expect(dropPolicyForwardChains(listed)).toEqual(["inet filter forward"]);
  });

  it("nothing listed, nothing named", () => {
    expect(dropPolicyForwardChains("")).toEqual([]);
    expect(dropPolicyForwardChains('{"nftables":[]}')).toEqual([]);
  });
});

describe("the natOutgoing table", () => {
  it("masquerades from natOutgoing pools to outside every pool, replaced whole", () => {
    const r = natRuleset(["10.244.0.0/16"], ["10.244.0.0/16", "10.245.0.0/16"]);
    expect(r).toContain("delete table ip weft");
    expect(r).toContain("set masq-pools { type ipv4_addr; flags interval; elements = { 10.244.0.0/16 } }");
    expect(r).toContain("ip saddr @masq-pools ip daddr != @all-pools masquerade");
  });
});
