import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BgpError, decodeMessage, encodeEndOfRib, encodeKeepalive, encodeNotification, encodeOpen, encodeUpdate, frameLength, isEndOfRib, message, type Attributes, type Open, type Update } from "./wire.js";

const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."));
const prefix = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([a, len]) => ({ addr: (a & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) >>> 0, len }));
const attributes: fc.Arbitrary<Attributes> = fc.record(
  {
    origin: fc.integer({ min: 0, max: 2 }),
    asPath: fc.array(fc.record({ type: fc.constantFrom(1 as const, 2 as const), asns: fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 5 }) }), { maxLength: 3 }),
    nextHop: ip,
    med: fc.nat(),
    localPref: fc.nat(),
    communities: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 4 }),
    largeCommunities: fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff })), { minLength: 1, maxLength: 3 }),
    originatorId: ip,
    clusterList: fc.array(ip, { maxLength: 3 }),
  },
  { requiredKeys: ["origin", "asPath", "nextHop"] },
);

describe("BGP wire codec", () => {
  it("every UPDATE it encodes decodes back to the same record", () => {
    fc.assert(
      fc.property(fc.array(prefix, { maxLength: 20 }), attributes, fc.array(prefix, { minLength: 1, maxLength: 20 }), (withdrawn, attrs, nlri) => {
        const u = decodeMessage(encodeUpdate({ withdrawn, attributes: attrs, nlri })) as Update;
        expect(u.withdrawn).toEqual(withdrawn);
        expect(u.nlri).toEqual(nlri);
        expect(u.attributes).toEqual(attrs);
        expect(u.treatAsWithdraw).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it("OPEN with multiprotocol, route refresh, graceful restart and 4-octet AS round-trips (AS_TRANS in the 2-octet field)", () => {
    const o: Omit<Open, "type"> = {
      version: 4,
      as: 4200000000,
      holdTime: 90,
      bgpId: "10.30.0.11",
      capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 2 }, { code: 64, restarting: true, restartTime: 120, families: [{ afi: 1, safi: 1, forwarding: true }] }, { code: 65, as: 4200000000 }, { code: 73, data: new Uint8Array([1, 2]), unknown: true }],
    };
    const bytes = encodeOpen(o);
    expect((bytes[20] << 8) | bytes[21]).toBe(23456);
    expect(decodeMessage(bytes)).toEqual({ type: 1, ...o });
  });

  it("an empty UPDATE is End-of-RIB; KEEPALIVE and NOTIFICATION decode", () => {
    expect(isEndOfRib(decodeMessage(encodeEndOfRib()) as Update)).toBe(true);
    expect(decodeMessage(encodeKeepalive())).toEqual({ type: 4 });
    expect(decodeMessage(encodeNotification(6, 7))).toMatchObject({ type: 3, code: 6, subcode: 7 });
  });

  const err = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (e instanceof BgpError) return `${e.code}/${e.subcode}`;
      throw e;
    }
    return "ok";
  };

  it("names header errors as RFC 4271 6.1 does", () => {
    const k = encodeKeepalive();
    const badMarker = Uint8Array.from(k);
    badMarker[3] = 0;
    expect(err(() => frameLength(badMarker))).toBe("1/1");
    const badLen = Uint8Array.from(k);
    badLen[17] = 18;
    expect(err(() => frameLength(badLen))).toBe("1/2");
    const badType = Uint8Array.from(k);
    badType[18] = 9;
    expect(err(() => frameLength(badType))).toBe("1/3");
  });

  it("treats attribute errors as withdraw (RFC 7606) and framing errors as session errors", () => {
    const good = { origin: 0, asPath: [], nextHop: "10.0.0.1" };
    const nlri = [{ addr: 0x0a000000, len: 24 }];
    const m = encodeUpdate({ withdrawn: [], attributes: good, nlri });
    // ORIGIN value 7
    const badOrigin = Uint8Array.from(m);
    badOrigin[19 + 4 + 3] = 7;
    expect((decodeMessage(badOrigin) as Update).treatAsWithdraw).toBe("invalid ORIGIN");
    // missing NEXT_HOP
    expect((decodeMessage(encodeUpdate({ withdrawn: [], attributes: { origin: 0, asPath: [] }, nlri })) as Update).treatAsWithdraw).toMatch(/missing well-known attribute NEXT_HOP/);
    // NLRI prefix length 33
    const badNlri = Uint8Array.from(m);
    badNlri[badNlri.length - 4] = 33;
    expect(err(() => decodeMessage(badNlri))).toBe("3/10");
  });

  it(`survives random bytes: only BgpError, never anything else (${Number(process.env.WEFT_FUZZ_RUNS ?? 100_000)} cases)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.tuple(fc.integer({ min: 1, max: 5 }), fc.uint8Array({ maxLength: 120 })).map(([t, b]) => message(t, b))), (bytes) => {
        try {
          const n = frameLength(bytes);
          if (n !== undefined && n <= bytes.length) decodeMessage(bytes.subarray(0, n));
        } catch (e) {
          if (!(e instanceof BgpError)) throw e;
        }
      }),
      { numRuns: Number(process.env.WEFT_FUZZ_RUNS ?? 100_000) },
    );
  });
});
