// The SIMD checksum (and its copying variant) agrees with RFC 1071 done the plain way,
// for every length and alignment, including data that makes the lanes carry.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FastPath } from "./fastpath.js";

/** RFC 1071 over bytes in network order, folded; returned in memory (little-endian) order. */
function reference(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ((s & 0xff) << 8) | (s >> 8);
}

describe("internet checksum in the fast path", () => {
  const fp = new FastPath();
  const base = fp.x.layoutScratch();
  const mem = () => new Uint8Array(fp.memory);

  it("sums like RFC 1071 for any length (0-70,000) and alignment, and the copy is exact", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 63 }), fc.oneof(fc.constant(0xff), fc.constant(0), fc.integer({ min: 1, max: 0xfffffff })), (len, a, b, seed) => {
        const data = new Uint8Array(len);
        let x = seed;
        for (let i = 0; i < len; i++) data[i] = seed === 0xff || seed === 0 ? seed : ((x = (x * 1103515245 + 12345) >>> 0) >>> 24);
        const src = base + a;
        const dst = base + 100_000 + b;
        mem().set(data, src);
        const want = reference(data);
        expect(fp.x.checksumSum(src, len)).toBe(want);
        mem().fill(0, dst, dst + len);
        expect(fp.x.checksumSumCopy(dst, src, len)).toBe(want);
        expect(Buffer.compare(mem().subarray(dst, dst + len), data)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
