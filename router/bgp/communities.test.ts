// Calico's community values and prefixAdvertisements: which routes carry what.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addCommunities, advertisedCommunities, communityTexts, parseCommunity, unresolvedCommunities } from "./communities.js";

describe("BGP communities as Calico's BGPConfiguration gives them", () => {
  it("reads standard (aa:nn) and large (aa:nn:mm) values, and refuses the rest", () => {
    expect(parseCommunity("64512:100")).toEqual({ standard: ((64512 << 16) | 100) >>> 0 });
    expect(parseCommunity("65535:65535")).toEqual({ standard: 0xffffffff });
    expect(parseCommunity("4200000000:1:2")).toEqual({ large: [4200000000, 1, 2] });
    for (const bad of ["", "64512", "65536:1", "1:65536", "a:b", "1:2:3:4", "4294967296:1:1", "-1:2", " 1:2", "1:2 "]) expect(parseCommunity(bad), bad).toBeUndefined();
  });

  it("adding communities keeps those a route carries and adds each new one once", () => {
    const std = (a: number, b: number) => ((a << 16) | b) >>> 0;
    const attrs = { communities: [std(65003, 7)], largeCommunities: [[65003, 1, 2]] as Array<[number, number, number]> };
    const out = addCommunities(attrs, { communities: [std(65003, 7), std(64512, 120)], largeCommunities: [[65003, 1, 2], [64512, 300, 100]] });
    expect(communityTexts(out)).toEqual(["65003:7", "64512:120", "65003:1:2", "64512:300:100"]);
    expect(addCommunities(attrs, {})).toBe(attrs);
  });

  it("a route inside several advertisements carries all their communities once; one outside, none; names resolve", () => {
    const of = advertisedCommunities({
      communities: [{ name: "zone", value: "64512:10" }, { name: "big", value: "64512:1:2" }],
      prefixAdvertisements: [
        { cidr: "192.168.0.0/16", communities: ["zone", "64512:20"] },
        { cidr: "192.168.5.0/24", communities: ["zone", "big"] },
        { cidr: "fd00::/64", communities: ["64512:99"] },
      ],
    });
    expect(communityTexts(of("192.168.5.64/26"))).toEqual(["64512:10", "64512:20", "64512:1:2"]);
    expect(communityTexts(of("192.168.9.7/32"))).toEqual(["64512:10", "64512:20"]);
    // A route wider than the CIDR is not inside it (BIRD's net ~ cidr).
    expect(of("192.0.0.0/8")).toEqual({});
    expect(of("10.0.0.0/26")).toEqual({});
    expect(advertisedCommunities(undefined)("192.168.5.64/26")).toEqual({});
  });

  it("a name nothing defines (a node's own advertisements naming one the default lacks) is reported, and left out of what routes carry", () => {
    const spec = { communities: [{ name: "zone", value: "64512:10" }], prefixAdvertisements: [{ cidr: "10.0.0.0/8", communities: ["zone", "rack-b", "64512:5"] }] };
    expect(unresolvedCommunities(spec)).toEqual(["rack-b"]);
    expect(communityTexts(advertisedCommunities(spec)("10.1.0.0/26"))).toEqual(["64512:10", "64512:5"]);
    expect(unresolvedCommunities(undefined)).toEqual([]);
  });

  it("any text: a community or undefined, and what it reads writes back the same (3000 cases)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.tuple(fc.nat(70000), fc.nat(70000)).map(([a, b]) => `${a}:${b}`), fc.tuple(fc.nat(), fc.nat(), fc.nat()).map((t) => t.join(":"))), (text) => {
        const c = parseCommunity(text);
        if (c) expect(communityTexts("standard" in c ? { communities: [c.standard] } : { largeCommunities: [c.large] })).toEqual([text.replace(/\b0+(\d)/g, "$1")]);
      }),
      { numRuns: 3000 },
    );
  });
});
