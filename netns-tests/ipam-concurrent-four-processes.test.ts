// 50+ concurrent IPAM assignments from 4 node processes against one store, SQLite
// and etcd: no address or block is given twice, and all are released after.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdServer } from "../router/lab/etcd.js";
import { projectRoot } from "../router/native/index.js";
import { openDatastore } from "../router/store/store.js";
import { ipamFor } from "../router/ipam/ipam.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const cli = () => path.join(projectRoot(), "dist", "router", "cli", "main.js");

function weft(args: string[], datastore: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli(), ...args, "--datastore", datastore]);
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`weft ${args.join(" ")}: exit ${code}: ${err}`))));
  });
}

const POOL = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: p}
spec: {cidr: 10.77.0.0/26, blockSize: 29}
`;

function concurrentAssignments(name: string, url: () => string): void {
  it(`${name}: 4 node processes x 13 concurrent assignments (8 blocks of 8 for 64 addresses: claims race, some borrow) get 52 distinct addresses, blocks with one owner each, all released after`, async () => {
    const ds = url();
    const store = await openDatastore(ds);
    const { Resources } = await import("../router/resources/client.js");
    const { parseManifests } = await import("../router/resources/manifest.js");
    await new Resources(store).apply(parseManifests(POOL, "pool.yaml"));
    const t0 = Date.now();
    const results = await Promise.all(["w1", "w2", "w3", "w4"].map((node) => weft(["ipam", "assign", "--node", node, "--handle", `c-${node}`, "--count", "13"], ds)));
    const got = results.flatMap((r) => JSON.parse(r) as Array<{ address: string; block: string }>);
    const blocks = await ipamFor(store).blocks();
    console.log(`[ipam ${name}] ${got.length} addresses in ${Date.now() - t0} ms, ${new Set(got.map((g) => g.address)).size} distinct, ${blocks.length} blocks: ${blocks.map((b) => `${b.block.cidr}=${b.block.affinity}(${Object.keys(b.block.allocations).length})`).join(" ")}`);
    expect(got).toHaveLength(52);
    expect(new Set(got.map((g) => g.address)).size).toBe(52);
    // Each address sits in exactly one block, and each block's allocation count adds up.
    expect(blocks.reduce((n, b) => n + Object.keys(b.block.allocations).length, 0)).toBe(52);
    expect(new Set(blocks.map((b) => b.block.cidr)).size).toBe(blocks.length);
    for (const node of ["w1", "w2", "w3", "w4"]) await weft(["ipam", "release", "--handle", `c-${node}-0`], ds);
    const ipam = ipamFor(store);
    await Promise.all(got.map((_g, i) => ipam.releaseByHandle(`c-w${Math.floor(i / 13) + 1}-${i % 13}`)));
    const left = (await ipam.blocks()).reduce((n, b) => n + Object.keys(b.block.allocations).length, 0);
    expect(left).toBe(0);
    await store.close();
  });
}

describe("IPAM under concurrency", () => {
  const dir = tempDir("ipam-conc");
  const etcd = new EtcdServer({ dir: path.join(dir, "etcd"), host: "127.0.0.1", port: 23800 });
  beforeAll(() => etcd.start(), 30_000);
  afterAll(() => etcd.stop());
  concurrentAssignments("sqlite", () => `sqlite:${path.join(dir, "ipam.db")}`);
  concurrentAssignments("etcd", () => etcd.url);
});
