// IPv4 address and prefix parsing, by character (route tables of 100,000 entries parse
// at every sync): the same answers as the regular expressions it replaced, on any text.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { formatCIDR, formatIPv4, parseCIDR, parseIPv4 } from "./addr.js";

// The definitions as they were: four dot-separated runs of 1-3 digits, each at most 255.
function referenceIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}
function referenceCIDR(text: string, strict = true) {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const addr = referenceIPv4(m[1]);
  const len = Number(m[2]);
  if (addr === undefined || len > 32) return undefined;
  if (strict && (addr & ~(len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) >>> 0 !== 0) return undefined;
  return { addr, len };
}

// Text close to an address: digits, dots, slashes and a few other characters.
const nearly = fc.string({ unit: fc.constantFrom("0", "1", "2", "5", "9", ".", ".", "/", "3", "x", " ", "-", "+", "e"), maxLength: 22 });
const octet = fc.oneof(fc.integer({ min: 0, max: 999 }).map(String), fc.constantFrom("", "00", "000", "0255", "256", "1e2", " 1"));
const dotted = fc.array(octet, { minLength: 1, maxLength: 6 }).map((o) => o.join("."));

describe("parseIPv4 and parseCIDR", () => {
  it("agree with the regular-expression definitions on arbitrary, near-address and dotted text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), nearly, dotted), (t) => {
        expect(parseIPv4(t)).toBe(referenceIPv4(t));
      }),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.oneof(nearly, dotted), fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom("", "024", "3x", "-1", " 8")), fc.boolean(), (a, len, strict) => {
        const t = `${a}/${len}`;
        expect(parseCIDR(t, strict)).toEqual(referenceCIDR(t, strict));
      }),
      { numRuns: 20_000 },
    );
  });

  it("round-trip every address and prefix they format", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (addr, len) => {
        expect(parseIPv4(formatIPv4(addr))).toBe(addr);
        const masked = len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
        expect(parseCIDR(formatCIDR({ addr: masked, len }))).toEqual({ addr: masked, len });
      }),
    );
    expect(parseCIDR("10.0.0.1/24")).toBeUndefined();
    expect(parseCIDR("10.0.0.1/24", false)).toEqual({ addr: 0x0a000001, len: 24 });
    expect(parseIPv4("10.0.0")).toBeUndefined();
  });
});
