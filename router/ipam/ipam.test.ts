import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { openDatastore, unreadableRecords } from "../store/store.js";
import { Resources } from "../resources/client.js";
import { parseManifests } from "../resources/manifest.js";
import type { IPPool } from "../resources/kinds.js";
import { blockKey, candidateBlocks, configureIPAM, IPAM, IPAMError, ipamFor, nodeBlockUsage, readIPAMConfig } from "./ipam.js";
import { tempDir } from "../temp-dir.test-helper.js";

const dir = tempDir("ipam");
let n = 0;

async function setup(poolYaml: string) {
  return (await setupWithStore(poolYaml)).ipam;
}

/** An IPAM as the CLI and weft-cni make it: settings from the datastore's IPAMConfiguration. */
async function setupWithStore(poolYaml: string) {
  const store = await openDatastore(`sqlite:${path.join(dir, `i${n++}.db`)}`);
  const res = new Resources(store);
  await res.apply(parseManifests(poolYaml, "pool.yaml"));
  return { res, ipam: ipamFor(store, res) };
}

const pool = (cidr: string, blockSize = 26, extra = "") => `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: p}
spec: {cidr: ${cidr}, blockSize: ${blockSize}${extra}}
`;

describe("IPAM", () => {
  it("claims one block per node and hands out its addresses in order", async () => {
    const ipam = await setup(pool("10.10.0.0/16"));
    const a = await ipam.assign({ node: "w1", handle: "h1" });
    const b = await ipam.assign({ node: "w1", handle: "h2" });
    const c = await ipam.assign({ node: "w2", handle: "h3" });
    expect(a.block).toBe(b.block);
    expect(c.block).not.toBe(a.block);
    expect(a.address.endsWith(".0") || /\.\d+$/.test(a.address)).toBe(true);
    const blocks = await ipam.blocks();
    expect(blocks.map((x) => x.block.affinity).sort()).toEqual(["host:w1", "host:w2"]);
  });

  it("borrows from another node's block when the pool has no free block, and says when all is gone", async () => {
    const ipam = await setup(pool("10.20.0.0/29", 29));
    const first = await ipam.assign({ node: "w1", handle: "a" });
    for (let i = 0; i < 7; i++) await ipam.assign({ node: i % 2 ? "w1" : "w2", handle: `x${i}` });
    const blocks = await ipam.blocks();
    expect(blocks).toHaveLength(1);
    expect(Object.values(blocks[0].block.allocations).some((al) => al.node === "w2")).toBe(true);
    // What ipam show --show-borrowed lists: w2's addresses in w1's block, and nothing of w1's.
    const borrowed = await ipam.borrowed();
    expect(borrowed.map((b) => b.node)).toEqual(["w2", "w2", "w2", "w2"]);
    expect(borrowed[0]).toMatchObject({ block: "10.20.0.0/29", owner: "w1" });
    await expect(ipam.assign({ node: "w2", handle: "z" })).rejects.toThrow("No IPs available in pools: [10.20.0.0/29]");
    expect(await ipam.releaseAddress(first.address)).toBe(true);
    expect(await ipam.releaseAddress(first.address)).toBe(false);
    expect((await ipam.assign({ node: "w2", handle: "again" })).address).toBe(first.address);
  });

  it("strictAffinity: a node whose blocks are full gets no address borrowed from another node's block, and is told why", async () => {
    const { res: store, ipam } = await setupWithStore(pool("10.21.0.0/29", 29));
    expect(await readIPAMConfig(store)).toEqual({ strictAffinity: false, maxBlocksPerHost: 0 });
    await ipam.assign({ node: "w1", handle: "a" });
    expect(await configureIPAM(store, { strictAffinity: true })).toMatchObject({ before: { strictAffinity: false }, after: { strictAffinity: true, maxBlocksPerHost: 0 } });
    await expect(ipam.assign({ node: "w2", handle: "b" })).rejects.toThrow("No IPs available in pools: [10.21.0.0/29] (strictAffinity keeps it from borrowing the free addresses of other nodes' blocks: weft ipam configure changes that)");
    await configureIPAM(store, { strictAffinity: false });
    expect((await ipam.assign({ node: "w2", handle: "b" })).block).toBe("10.21.0.0/29");
  });

  it("maxBlocksPerHost: a node stops claiming blocks at the limit, borrows instead, and without borrowing is told why", async () => {
    const { res: store, ipam } = await setupWithStore(pool("10.22.0.0/28", 30));
    await configureIPAM(store, { maxBlocksPerHost: 1 });
    for (const h of ["a", "b", "c", "d"]) await ipam.assign({ node: "w1", handle: h });
    await ipam.assign({ node: "w2", handle: "e" });
    // w1's one block is full: its fifth address is borrowed from w2's block, not a new block.
    const fifth = await ipam.assign({ node: "w1", handle: "f" });
    const blocks = (await ipam.blocks()).map((x) => x.block);
    expect(blocks.filter((b) => b.affinity === "host:w1")).toHaveLength(1);
    expect(blocks.find((b) => b.cidr === fifth.block)?.affinity).toBe("host:w2");
    await configureIPAM(store, { strictAffinity: true });
    await expect(ipam.assign({ node: "w1", handle: "g" })).rejects.toThrow("No IPs available in pools: [10.22.0.0/28] (node w1 has 1 block, as many as maxBlocksPerHost (1) allows; strictAffinity keeps it from borrowing the free addresses of other nodes' blocks: weft ipam configure changes that)");
    await configureIPAM(store, { maxBlocksPerHost: 0 });
    expect((await ipam.assign({ node: "w1", handle: "g" })).block).not.toBe(fifth.block);
  });

  it("an IPAMConfiguration applied from a manifest is obeyed; a stored one that does not validate stops assignment saying how to mend it; configure replaces it", async () => {
    const { res, ipam } = await setupWithStore(pool("10.23.0.0/30", 30));
    await res.apply(parseManifests("apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\nspec: {strictAffinity: true}\n", "ipamconfig.yaml"));
    await ipam.assign({ node: "w1", handle: "a" });
    expect(await readIPAMConfig(res)).toEqual({ strictAffinity: true, maxBlocksPerHost: 0 });
    await expect(ipam.assign({ node: "w2", handle: "b" })).rejects.toThrow("No IPs available in pools: [10.23.0.0/30] (strictAffinity keeps it from borrowing");
    const key = "/weft/resources/ipamconfigurations/default";
    await res.store.txn([{ op: "update", key, value: '{"apiVersion":"projectcalico.org/v3","kind":"IPAMConfiguration","metadata":{"name":"default"},"spec":{"strictAffinity":"yes"}}' }]);
    await expect(ipam.assign({ node: "w2", handle: "b" })).rejects.toThrow("IPAMConfiguration(default) in the datastore does not validate (IPAMConfiguration(default): spec.strictAffinity: Invalid input: expected boolean, received string): set it again with weft ipam configure or weft apply");
    await res.store.txn([{ op: "update", key, value: "{not json" }]);
    await expect(ipam.assign({ node: "w2", handle: "b" })).rejects.toThrow(`datastore record ${key} is not a resource weft can read`);
    expect(await configureIPAM(res, { maxBlocksPerHost: 3 })).toMatchObject({ after: { strictAffinity: false, maxBlocksPerHost: 3 }, replacedUnreadable: true });
    expect(unreadableRecords.has(key)).toBe(false);
    expect((await ipam.assign({ node: "w2", handle: "b" })).address).toBe("10.23.0.1");
    expect(() => parseManifests("apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: other}\nspec: {}\n", "x.yaml")).toThrow('x.yaml: document 1: IPAMConfiguration(other): metadata.name: must be "default": the cluster has one IPAMConfiguration');
  });

  it("a requested address (CNI_ARGS IP): claims its block for the node, borrows in another's, is refused when taken, outside the pools, in a disabled pool, or borrowed under strictAffinity; reservations do not hold it back", async () => {
    const { res, ipam } = await setupWithStore(pool("10.24.0.0/24", 28));
    await res.apply(parseManifests("apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: keep}\nspec: {reservedCIDRs: [10.24.0.5]}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: off}\nspec: {cidr: 10.25.0.0/24, disabled: true}\n", "x.yaml"));
    expect(await ipam.assignIP({ node: "w1", handle: "a", address: "10.24.0.5" })).toEqual({ address: "10.24.0.5", block: "10.24.0.0/28" });
    expect((await ipam.blocks()).find((b) => b.block.cidr === "10.24.0.0/28")?.block.affinity).toBe("host:w1");
    // Asked again by the same handle: the same answer.
    expect(await ipam.assignIP({ node: "w1", handle: "a", address: "10.24.0.5" })).toEqual({ address: "10.24.0.5", block: "10.24.0.0/28" });
    await expect(ipam.assignIP({ node: "w2", handle: "b", address: "10.24.0.5" })).rejects.toThrow("10.24.0.5 is already in use (handle a, node w1)");
    // In w1's block for w2: borrowed.
    expect(await ipam.assignIP({ node: "w2", handle: "b", address: "10.24.0.6" })).toEqual({ address: "10.24.0.6", block: "10.24.0.0/28" });
    expect((await ipam.borrowed()).map((x) => x.address)).toEqual(["10.24.0.6"]);
    await expect(ipam.assignIP({ node: "w1", handle: "c", address: "10.99.0.1" })).rejects.toThrow("10.99.0.1 is in no IP pool: a requested address must be in one");
    await expect(ipam.assignIP({ node: "w1", handle: "c", address: "10.25.0.1" })).rejects.toThrow("10.25.0.1 is in IPPool(off), which is disabled");
    await expect(ipam.assignIP({ node: "w1", handle: "c", address: "10.24.0.256" })).rejects.toThrow('"10.24.0.256" is not an IPv4 address');
    await configureIPAM(res, { strictAffinity: true });
    await expect(ipam.assignIP({ node: "w2", handle: "c", address: "10.24.0.7" })).rejects.toThrow("10.24.0.7 is in node w1's block 10.24.0.0/28, and strictAffinity keeps a node from borrowing from other nodes' blocks");
    // The automatic path still skips the reserved address in w1's block.
    for (let i = 0; i < 12; i++) expect((await ipam.assign({ node: "w1", handle: `auto${i}` })).address).not.toBe("10.24.0.5");
  });

  it("counts a node's own blocks and their addresses by pool (the weft_ipam_* metrics); borrowed ones stay with the block's owner", async () => {
    const ipam = await setup(pool("10.10.0.0/28", 27).replace("blockSize: 27", "blockSize: 29"));
    for (const h of ["a", "b", "c"]) await ipam.assign({ node: "w1", handle: h });
    await ipam.assign({ node: "w2", handle: "d" });
    const blocks = (await ipam.blocks()).map((x) => x.block);
    expect(nodeBlockUsage("w1", blocks)).toEqual([{ pool: "p", blocks: 1, inUse: 3, free: 5 }]);
    expect(nodeBlockUsage("w2", blocks)).toEqual([{ pool: "p", blocks: 1, inUse: 1, free: 7 }]);
    expect(nodeBlockUsage("w3", blocks)).toEqual([]);
  });

  it("releases by handle exactly the addresses of that handle", async () => {
    const ipam = await setup(pool("10.30.0.0/24"));
    await ipam.assign({ node: "w1", handle: "keep" });
    const gone = [await ipam.assign({ node: "w1", handle: "c1" }), await ipam.assign({ node: "w1", handle: "c1" })];
    expect((await ipam.releaseByHandle("c1")).sort()).toEqual(gone.map((g) => g.address).sort());
    expect(await ipam.releaseByHandle("c1")).toEqual([]);
    expect(await ipam.addressesOf("keep")).toHaveLength(1);
  });

  it("uses only pools whose nodeSelector selects the node, and skips disabled pools", async () => {
    const ipam = await setup(pool("10.40.0.0/24", 26, ", nodeSelector: \"zone == 'b'\""));
    await expect(ipam.assign({ node: "w1", handle: "a", labels: { zone: "a" } })).rejects.toThrow(/No IPs available/);
    expect((await ipam.assign({ node: "w1", handle: "a", labels: { zone: "b" } })).address).toMatch(/^10\.40\.0\./);
  });

  it("honours a pool's allowedUses: tunnel addresses only from pools that allow Tunnel, pod addresses only from those that allow Workload", async () => {
    const two = `${pool("10.60.0.0/24", 26, ", allowedUses: [Tunnel]").replace("name: p", "name: tunnels")}---\n${pool("10.61.0.0/24", 26, ", allowedUses: [Workload]").replace("name: p", "name: pods")}`;
    const ipam = await setup(two);
    expect((await ipam.assign({ node: "w1", handle: "tunnel-addr-w1", use: "Tunnel" })).address).toMatch(/^10\.60\.0\./);
    expect((await ipam.assign({ node: "w1", handle: "pod" })).address).toMatch(/^10\.61\.0\./);
    const only = await setup(pool("10.62.0.0/24", 26, ", allowedUses: [Workload]"));
    await expect(only.assign({ node: "w1", handle: "t", use: "Tunnel" })).rejects.toThrow("no enabled IPv4 pool selects node w1 for tunnel addresses");
  });

  it("moves a node's tunnel address to a pool that still gives it one (a migration), keeps it while none does, gives it up when its pool is deleted", async () => {
    const store = await openDatastore(`sqlite:${path.join(dir, `i${n++}.db`)}`);
    const res = new Resources(store);
    const ipam = new IPAM(store, () => res.list<IPPool>("IPPool"));
    const named = (name: string, cidr: string, extra = "") => pool(cidr, 26, extra).replace("name: p", `name: ${name}`);
    await res.apply(parseManifests(named("old", "10.70.0.0/24"), "a.yaml"));
    const handle = "tunnel-addr-w1";
    const first = (await ipam.assign({ node: "w1", handle, use: "Tunnel" })).address;
    expect(await ipam.reconcileTunnel("w1", {}, first)).toBe(first);
    // Only a disabled pool: nothing better to move to, and its blocks are still routed.
    await res.apply(parseManifests(named("old", "10.70.0.0/24", ", disabled: true"), "a.yaml"));
    expect(await ipam.reconcileTunnel("w1", {}, first)).toBe(first);
    await res.apply(parseManifests(named("new", "10.71.0.0/24"), "b.yaml"));
    const moved = await ipam.reconcileTunnel("w1", {}, first);
    expect(moved).toMatch(/^10\.71\.0\./);
    expect(await ipam.addressesOf(handle)).toEqual([moved]);
    // Its pool deleted and no pool for it: the address is given up.
    await res.delete("IPPool", "new");
    expect(await ipam.reconcileTunnel("w1", {}, moved!)).toBeUndefined();
    expect(await ipam.addressesOf(handle)).toEqual([]);
  });

  it("gives addresses from a Manual pool (assignmentMode) only to those that name it", async () => {
    const two = `${pool("10.63.0.0/24", 26, ", assignmentMode: Manual").replace("name: p", "name: manual")}---\n${pool("10.64.0.0/24").replace("name: p", "name: auto")}`;
    const ipam = await setup(two);
    expect((await ipam.assign({ node: "w1", handle: "a" })).address).toMatch(/^10\.64\.0\./);
    expect((await ipam.assign({ node: "w1", handle: "b", pools: ["manual"] })).address).toMatch(/^10\.63\.0\./);
    expect((await ipam.assign({ node: "w1", handle: "t", use: "Tunnel" })).address).toMatch(/^10\.64\.0\./);
  });

  it("never gives an address twice under concurrent assignment in one process", async () => {
    const ipam = await setup(pool("10.50.0.0/24"));
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => ipam.assign({ node: `w${i % 4}`, handle: `c${i}` })));
    expect(new Set(got.map((g) => g.address)).size).toBe(40);
  });
});

describe("blocks written around weft", () => {
  it("a block record that is not one is skipped and named; its CIDR is not claimed over it; assignment goes on", async () => {
    const store = await openDatastore(`sqlite:${path.join(dir, `i${n++}.db`)}`);
    const res = new Resources(store);
    await res.apply(parseManifests(pool("10.70.0.0/28", 30), "pool.yaml"));
    const ipam = new IPAM(store, () => res.list<IPPool>("IPPool"));
    const first = candidateBlocks(parseManifests(pool("10.70.0.0/28", 30), "p.yaml")[0] as IPPool, "w1").next().value as string;
    await store.txn([{ op: "create", key: blockKey(first), value: '{"cidr":"nonsense"}' }]);
    const got = await ipam.assign({ node: "w1", handle: "h" });
    expect(got.block).not.toBe(first);
    expect((await ipam.blocks()).map((b) => b.block.cidr)).toEqual([got.block]);
    expect(unreadableRecords.get(blockKey(first))).toBe("not the shape weft writes there");
    await store.txn([{ op: "delete", key: blockKey(first) }]);
    await ipam.blocks();
    expect(unreadableRecords.has(blockKey(first))).toBe(false);
  });
});

describe("pools written around weft", () => {
  it("a pool whose nodeSelector does not parse selects no node; the other pools still give addresses", async () => {
    const store = await openDatastore(`sqlite:${path.join(dir, `i${n++}.db`)}`);
    const res = new Resources(store);
    await res.apply(parseManifests(pool("10.80.0.0/16"), "pool.yaml"));
    await store.txn([{ op: "create", key: "/weft/resources/ippools/broken", value: JSON.stringify({ apiVersion: "projectcalico.org/v3", kind: "IPPool", metadata: { name: "broken" }, spec: { cidr: "10.81.0.0/16", blockSize: 26, ipipMode: "Always", vxlanMode: "Never", natOutgoing: false, disabled: false, nodeSelector: "rack ==" } }) }]);
    const ipam = ipamFor(store, res);
    expect((await ipam.assign({ node: "w1", handle: "h" })).address).toMatch(/^10\.80\./);
    await expect(ipam.assign({ node: "w1", handle: "h2", pools: ["broken"] })).rejects.toThrow(/No IPs available in pools: \[\]/);
  });
});

describe("IPReservation", () => {
  async function withReservation(reserved: string[]) {
    const store = await openDatastore(`sqlite:${path.join(dir, `r${n++}.db`)}`);
    const res = new Resources(store);
    await res.apply(parseManifests(pool("10.20.0.0/28", 28), "pool.yaml"));
    const ipam = ipamFor(store, res);
    const reserve = (cidrs: string[]) => res.apply(parseManifests(`apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r1}\nspec: {reservedCIDRs: [${cidrs.map((c) => `"${c}"`).join(", ")}]}\n`, "r.yaml"));
    await reserve(reserved);
    return { ipam, reserve };
  }

  it("a reserved address or CIDR is never given out, in a new block or an owned one; IPv6 entries are kept and ignored", async () => {
    const { ipam } = await withReservation(["10.20.0.0", "10.20.0.2/31", "fd00::/64"]);
    const got = [];
    for (let i = 0; i < 13; i++) got.push((await ipam.assign({ node: "w1", handle: `h${i}` })).address);
    expect(got[0]).toBe("10.20.0.1"); // a new block starts past its reserved first address
    expect(got).not.toContain("10.20.0.0");
    expect(got).not.toContain("10.20.0.2");
    expect(got).not.toContain("10.20.0.3");
    await expect(ipam.assign({ node: "w1", handle: "one-more" })).rejects.toThrow("No IPs available in pools: [10.20.0.0/28]");
  });

  it("an address given out before its reservation stays; released, it is not given again", async () => {
    const { ipam, reserve } = await withReservation(["10.20.0.15"]);
    const first = await ipam.assign({ node: "w1", handle: "a" });
    await reserve(["10.20.0.15", first.address]);
    expect((await ipam.allocationOf(first.address))?.handle).toBe("a");
    await ipam.releaseAddress(first.address);
    expect((await ipam.assign({ node: "w1", handle: "b" })).address).not.toBe(first.address);
  });

  it("a pool whose every address is reserved gives nothing (no block is claimed for nothing)", async () => {
    const { ipam } = await withReservation(["10.20.0.0/28"]);
    await expect(ipam.assign({ node: "w1", handle: "a" })).rejects.toThrow("No IPs available in pools: [10.20.0.0/28]");
    expect(await ipam.blocks()).toEqual([]);
  });

  it("an entry that is no address or CIDR is refused, naming it", () => {
    expect(() => parseManifests("apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: [10.0.0.1, 10.0.0.300]}\n", "x")).toThrow('IPReservation(r): spec.reservedCIDRs[1]: "10.0.0.300" is not an IP address or CIDR');
  });
});

describe("IPAM against a model: any sequence of assignments and releases", () => {
  type Op = { op: "assign"; node: string; handle: string } | { op: "releaseHandle"; handle: string } | { op: "releaseAddress"; pick: number };
  const node = fc.constantFrom("w1", "w2", "w3");
  const handle = fc.constantFrom("a", "b", "c", "d", "e", "f");
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant("assign" as const), node, handle }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("releaseHandle" as const), handle }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("releaseAddress" as const), pick: fc.nat(40) }) },
  );

  it("never gives an address twice, outside its pool or after it is exhausted; releases free exactly what they say (40 sequences of up to 40 steps, an 8-address pool in two blocks of 4 for three nodes)", async () => {
    let exhausted = 0;
    let borrowed = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const ipam = await setup(pool("10.60.0.0/29", 30));
        const model = new Map<string, { handle: string; node: string }>(); // address -> who holds it
        for (const o of ops) {
          if (o.op === "assign") {
            try {
              const got = await ipam.assign({ node: o.node, handle: o.handle });
              expect(model.has(got.address), `${got.address} given twice`).toBe(false);
              expect(got.address).toMatch(/^10\.60\.0\.[0-7]$/);
              model.set(got.address, { handle: o.handle, node: o.node });
            } catch (err) {
              if (!(err instanceof IPAMError)) throw err;
              expect(model.size, "refused with addresses left").toBe(8);
              exhausted++;
            }
          } else if (o.op === "releaseHandle") {
            const released = await ipam.releaseByHandle(o.handle);
            const held = [...model].filter(([, v]) => v.handle === o.handle).map(([a]) => a);
            expect(released.sort()).toEqual(held.sort());
            for (const a of held) model.delete(a);
          } else {
            const addresses = [...model.keys()];
            const a = addresses.length ? addresses[o.pick % addresses.length] : "10.60.0.3";
            expect(await ipam.releaseAddress(a)).toBe(model.delete(a));
          }
          // What IPAM holds is what the model holds; a block holds only its own addresses.
          const held = new Map<string, { handle: string; node: string }>();
          for (const { block } of await ipam.blocks()) {
            for (const [ord, al] of Object.entries(block.allocations)) {
              const base = Number(block.cidr.split("/")[0].split(".")[3]);
              expect(Number(ord)).toBeLessThan(4);
              held.set(`10.60.0.${base + Number(ord)}`, al);
              if (block.affinity !== `host:${al.node}`) borrowed++;
            }
          }
          expect(held).toEqual(model);
        }
      }),
      { numRuns: 40 },
    );
    console.log(`[ipam-model] 40 sequences: ${exhausted} assignments refused with the pool full, ${borrowed} borrowed-address observations`);
  });
});
