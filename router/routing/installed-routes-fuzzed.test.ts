// The route owner compares what it wants with what it installed last (InstalledRoutes),
// not with the kernel's listing. Over any sequence of desired tables, applied to a model
// of the kernel as `ip route replace` and `ip route del` change it (a route is its
// destination and metric; a del without a metric takes the lowest), the remembered
// routes must be what the kernel holds, and each change must leave the kernel holding
// exactly what was wanted, with nothing changed that was already right.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KernelRoute } from "../native/iproute.js";
import { EXTERNAL_ROUTE_METRIC, InstalledRoutes } from "./desired.js";

type Kernel = Map<string, KernelRoute>;
const key = (r: KernelRoute) => `${r.dst} ${r.metric ?? 0}`;

function replaceIn(k: Kernel, r: KernelRoute): void {
  k.set(key(r), r);
}

/** `ip route del DST proto 87 [metric M]`: without a metric, the lowest-metric route to DST. */
function delIn(k: Kernel, r: KernelRoute): void {
  if (r.metric) return void k.delete(key(r));
  const lowest = [...k.values()].filter((x) => x.dst === r.dst).sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
  if (lowest) k.delete(key(lowest));
}

const route = fc.record({
  dst: fc.constantFrom("10.0.0.0/26", "10.0.0.64/26", "10.0.1.0/24", "20.0.0.0/24", "20.0.1.0/24", "192.168.9.0/26"),
  via: fc.constantFrom("10.30.0.12", "10.30.0.13", "10.30.0.1"),
  kind: fc.constantFrom("tunnel", "direct", "external", "blackhole"),
});
/** A desired table: one route per destination, as desiredState makes it. */
const table = fc.uniqueArray(route, { selector: (r) => r.dst, maxLength: 6 }).map((rs) =>
  rs.map((r): KernelRoute => {
    if (r.kind === "blackhole") return { dst: r.dst, type: "blackhole" };
    if (r.kind === "tunnel") return { dst: r.dst, gateway: r.via, dev: "weft0", onlink: true };
    return { dst: r.dst, gateway: r.via, dev: "eth0", ...(r.kind === "external" ? { metric: EXTERNAL_ROUTE_METRIC } : {}) };
  }),
);

describe("the routes installed, remembered between syncs (fuzzed)", () => {
  it("over any sequence of desired tables: the kernel ends up holding exactly each one, what was right is left alone, and what is remembered is what the kernel holds", () => {
    fc.assert(
      fc.property(fc.array(table, { minLength: 1, maxLength: 8 }), (tables) => {
        const kernel: Kernel = new Map();
        const installed = new InstalledRoutes();
        for (const want of tables) {
          const before = new Map(kernel);
          const d = installed.diff(want);
          // changeRoutes: every replace, then every delete.
          for (const r of d.replace) replaceIn(kernel, r);
          for (const r of d.remove) delIn(kernel, r);
          installed.changed(d.replace, d.remove);
          expect(new Map([...kernel].sort())).toEqual(new Map(want.map((r) => [key(r), r] as const).sort()));
          // Nothing replaced that was already so.
          for (const r of d.replace) expect(before.get(key(r))).not.toEqual(r);
          // The memory is the kernel: a listing of it finds nothing missing either way.
          const listed = new InstalledRoutes([...kernel.values()]);
          expect(installed.missingFrom(listed)).toEqual([]);
          expect(listed.missingFrom(installed)).toEqual([]);
          expect(installed.size).toBe(kernel.size);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
