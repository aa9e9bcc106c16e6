import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FastPath, ENCAP_IPIP } from "./fastpath.js";
import { maskOf, type Prefix } from "./addr.js";

/** Reference: the longest of the live prefixes that contains addr. */
function reference(live: Map<string, Prefix & { hop: number }>, addr: number): number | undefined {
  let best: (Prefix & { hop: number }) | undefined;
  for (const p of live.values()) {
    if (((addr & maskOf(p.len)) >>> 0) === p.addr && (!best || p.len > best.len)) best = p;
  }
  return best?.hop;
}

const prefixArb = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
  // Mostly clustered (so prefixes overlap often), sometimes anywhere (high bit set too).
  .map(([a, len]) => ({ addr: ((a % 4 === 0 ? a : (a & 0x0003ffff) | 0x0a000000) & maskOf(len)) >>> 0, len }));

describe("LPM table against a reference", () => {
  it("agrees after any sequence of inserts, replacements and deletes of /0-/32 prefixes", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), prefixArb, fc.integer({ min: 1, max: 1000 })), { maxLength: 60 }),
        fc.array(fc.oneof(fc.integer({ min: 0x09ff0000, max: 0x0a04ffff }), fc.integer({ min: 0, max: 0xffffffff })), { minLength: 50, maxLength: 50 }),
        (ops, probes) => {
          const fp = new FastPath();
          const live = new Map<string, Prefix & { hop: number }>();
          for (const [insert, p, hop] of ops) {
            const k = `${p.addr}/${p.len}`;
            if (insert) {
              fp.upsert({ prefix: p, nextHop: hop, encap: ENCAP_IPIP });
              live.set(k, { ...p, hop });
            } else if (live.has(k)) {
              fp.remove(p);
              live.delete(k);
            }
          }
          const candidates = [...probes, ...[...live.values()].flatMap((p) => [p.addr, (p.addr | ~maskOf(p.len)) >>> 0])];
          for (const a of candidates) expect(fp.lookup(a)?.nextHop).toBe(reference(live, a));
          // Deleting everything gives every node back.
          for (const p of live.values()) fp.remove(p);
          expect(fp.x.lpmNodesLive()).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
