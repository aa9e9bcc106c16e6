// BGPFilter rules as Calico's BIRD functions run them: first match decides, no match
// accepts; In/NotIn with prefix-length ranges checked against bit strings.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { accepts, applyRules, filtersFor, type FilterRoute } from "./filters.js";
import { prefixOf } from "./rib.js";
import { parseManifests } from "../resources/manifest.js";
import type { BGPFilter, BGPFilterRule } from "../resources/kinds.js";

const route = (cidr: string, o: Partial<Omit<FilterRoute, "prefix">> = {}): FilterRoute => ({ prefix: prefixOf(cidr), fromPeer: false, attrs: {}, ...o });
const rule = (r: Partial<BGPFilterRule>): BGPFilterRule => ({ action: "Reject", ...r });

describe("BGPFilter rules", () => {
  it("Calico's sample import rules: In with a prefix-length floor accepts, NotIn rejects, and a route no rule matches passes", () => {
    const [f] = parseManifests(
      `apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: my-filter}
spec:
  importV4:
    - {action: Accept, matchOperator: In, cidr: 55.0.0.0/16, prefixLength: {min: 30}}
    - {action: Reject, matchOperator: NotIn, cidr: 44.0.0.0/16}
`,
      "f.yaml",
    ) as BGPFilter[];
    const rules = f.spec.importV4!;
    expect(accepts(rules, route("55.0.1.0/30"), false)).toBe(true);
    expect(accepts(rules, route("55.0.1.0/24"), false)).toBe(false); // too short for rule 1, and NotIn 44/16
    expect(accepts(rules, route("44.0.3.0/24"), false)).toBe(true); // in 44/16: no rule matches
    expect(accepts(rules, route("44.0.0.0/15"), false)).toBe(false); // wider than 44/16 is not In it
  });

  it("Equal is the exact prefix; source RemotePeers, peerType, a community and an AS-path prefix each narrow a rule", () => {
    expect(accepts([rule({ cidr: "10.0.0.0/24", matchOperator: "Equal" })], route("10.0.0.0/24"), false)).toBe(false);
    expect(accepts([rule({ cidr: "10.0.0.0/24", matchOperator: "Equal" })], route("10.0.0.0/25"), false)).toBe(true);
    expect(accepts([rule({ cidr: "10.0.0.0/24", matchOperator: "NotEqual" })], route("10.0.0.0/25"), false)).toBe(false);
    const remote = [rule({ source: "RemotePeers" })];
    expect(accepts(remote, route("10.0.0.0/24"), true)).toBe(true);
    expect(accepts(remote, route("10.0.0.0/24", { fromPeer: true }), true)).toBe(false);
    expect(accepts([rule({ peerType: "eBGP" })], route("10.0.0.0/24"), true)).toBe(true);
    expect(accepts([rule({ peerType: "eBGP" })], route("10.0.0.0/24"), false)).toBe(false);
    const tagged = route("10.0.0.0/24", { attrs: { communities: [((65003 << 16) | 7) >>> 0], largeCommunities: [[65003, 1, 2]] } });
    expect(accepts([rule({ communities: { values: ["65003:7"] } })], tagged, false)).toBe(false);
    expect(accepts([rule({ communities: { values: ["65003:1:2"] } })], tagged, false)).toBe(false);
    expect(accepts([rule({ communities: { values: ["65003:8"] } })], tagged, false)).toBe(true);
    const path = route("10.0.0.0/24", { attrs: { asPath: [{ type: 2, asns: [65003, 65010] }] } });
    expect(accepts([rule({ asPathPrefix: [65003] })], path, false)).toBe(false);
    expect(accepts([rule({ asPathPrefix: [65010] })], path, false)).toBe(true);
    // Every condition must hold: In the CIDR but from the wrong kind of peer does not match.
    expect(accepts([rule({ cidr: "10.0.0.0/8", matchOperator: "In", peerType: "iBGP" })], route("10.0.0.0/24"), false)).toBe(true);
  });

  it("an Accept's operations change the route first: communities added once each, AS numbers in front of its path in the order given; a rule that does not match changes nothing", () => {
    const tag = rule({ action: "Accept", cidr: "10.0.0.0/8", matchOperator: "In", operations: [{ addCommunity: { value: "65000:1" } }, { addCommunity: { value: "65000:1:2" } }, { addCommunity: { value: "65000:1" } }, { prependASPath: { prefix: [65000, 65001] } }] });
    const r = route("10.1.0.0/24", { attrs: { asPath: [{ type: 2, asns: [65003] }], communities: [7] } });
    expect(applyRules([tag], r, false)).toEqual({ asPath: [{ type: 2, asns: [65000, 65001, 65003] }], communities: [7, ((65000 << 16) | 1) >>> 0], largeCommunities: [[65000, 1, 2]] });
    expect(applyRules([tag], route("192.168.0.0/26", { attrs: { communities: [7] } }), false)).toEqual({ communities: [7] });
    expect(applyRules([rule({ action: "Reject" }), tag], r, false)).toBeUndefined();
    expect(r.attrs).toEqual({ asPath: [{ type: 2, asns: [65003] }], communities: [7] }); // the route itself is not changed
  });

  it("a BGPPeer's filters run in the order it names them, and a name that is no BGPFilter is reported", () => {
    const f = (name: string, exportV4: BGPFilterRule[]): BGPFilter => ({ apiVersion: "projectcalico.org/v3", kind: "BGPFilter", metadata: { name }, spec: { exportV4 } });
    const all = [f("accept-10", [rule({ action: "Accept", cidr: "10.0.0.0/8", matchOperator: "In" })]), f("reject-all", [rule({})])];
    const { filters, missing } = filtersFor(["accept-10", "gone", "reject-all"], all);
    expect(missing).toEqual(["gone"]);
    expect(accepts(filters.export, route("10.1.0.0/26"), false)).toBe(true);
    expect(accepts(filters.export, route("192.168.0.0/26"), false)).toBe(false);
    expect(accepts(filtersFor(["reject-all", "accept-10"], all).filters.export, route("10.1.0.0/26"), false)).toBe(false);
  });

  it("In and NotIn agree with BIRD's net ~ [cidr{lo,hi}] over bit strings (fuzzed)", () => {
    const bitsOf = (addr: number, len: number) => addr.toString(2).padStart(32, "0").slice(0, len);
    const prefix = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([a, len]) => ({ addr: len === 0 ? 0 : (a & (~0 << (32 - len))) >>> 0, len }));
    const text = (p: { addr: number; len: number }) => `${p.addr >>> 24}.${(p.addr >>> 16) & 255}.${(p.addr >>> 8) & 255}.${p.addr & 255}/${p.len}`;
    fc.assert(
      fc.property(prefix, prefix, fc.option(fc.integer({ min: 0, max: 32 }), { nil: undefined }), fc.option(fc.integer({ min: 0, max: 32 }), { nil: undefined }), fc.boolean(), (c, r, min, max, notIn) => {
        const lo = Math.max(c.len, min ?? 0);
        const hi = Math.min(32, max ?? 32);
        const inside = r.len >= lo && r.len <= hi && bitsOf(r.addr, c.len) === bitsOf(c.addr, c.len);
        const prefixLength = min === undefined && max === undefined ? undefined : { min, max };
        const got = accepts([rule({ cidr: text(c), matchOperator: notIn ? "NotIn" : "In", prefixLength })], route(text(r)), false);
        expect(got).toBe(!(notIn ? !inside : inside));
      }),
      { numRuns: 3000 },
    );
  });
});
