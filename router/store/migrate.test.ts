// weft datastore export / import between two SQLite datastores: the copy holds every
// record exactly (resources keep their uid, blocks their allocations, a record weft
// cannot read stays as it was); a datastore with other records is refused; an
// interrupted import completes when run again; a bad file is refused before anything
// is written. The same against etcd: netns-tests/datastore-moves-from-sqlite-to-etcd.
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { openDatastore, type Datastore } from "./store.js";
import { Resources } from "../resources/client.js";
import { parseManifests } from "../resources/manifest.js";
import { ipamFor } from "../ipam/ipam.js";
import { EXPORT_FORMAT, ExportFileError, exportDatastore, importDatastore, ImportError, parseExport } from "./migrate.js";
import { tempDir } from "../temp-dir.test-helper.js";

const dir = tempDir("migrate");
let n = 0;
const fresh = () => openDatastore(`sqlite:${path.join(dir, `m${n++}.db`)}`);

/** A datastore with what a cluster has: pools, a node, a BGP setting, blocks with addresses. */
async function populated(): Promise<Datastore> {
  const store = await fresh();
  const res = new Resources(store);
  await res.apply(parseManifests(`apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.244.0.0/16, blockSize: 28, ipipMode: Always}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: w1, labels: {zone: a}}
spec: {bgp: {ipv4Address: 10.30.0.11/24}}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64600}
`, "cluster.yaml"));
  const ipam = ipamFor(store, res);
  for (let i = 0; i < 20; i++) await ipam.assign({ node: i % 2 ? "w1" : "w2", handle: `k8s-pod-network.c${i}` });
  await store.txn([{ op: "create", key: "/weft/resources/ippools/hand-edit", value: "{not json" }]);
  return store;
}

const everything = async (s: Datastore) => (await s.list("/weft/")).items.map((kv) => [kv.key, kv.value]);

describe("weft datastore export and import", () => {
  it("copies every record exactly, and the copy reads as the original does", async () => {
    const from = await populated();
    const exp = parseExport(JSON.stringify(await exportDatastore(from)), "x.json");
    const to = await fresh();
    expect(await importDatastore(to, exp)).toEqual({ written: exp.records.length, alreadyThere: 0 });
    console.log(`[migrate] ${exp.records.length} records copied, revision ${exp.revision} of ${exp.from}`);
    expect(await everything(to)).toEqual(await everything(from));
    const [a, b] = [new Resources(from), new Resources(to)];
    expect((await b.get("IPPool", "pods"))?.metadata.uid).toBe((await a.get("IPPool", "pods"))?.metadata.uid);
    expect(await ipamFor(to).borrowed()).toEqual(await ipamFor(from).borrowed());
    // The copy goes on where the original would: the next address is the same.
    expect((await ipamFor(to, b).assign({ node: "w1", handle: "next" })).address).toBe((await ipamFor(from, a).assign({ node: "w1", handle: "next" })).address);
  });

  it("refuses a datastore holding other weft records, writing nothing", async () => {
    const exp = await exportDatastore(await populated());
    const to = await fresh();
    await new Resources(to).apply(parseManifests("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: other}\nspec: {cidr: 10.9.0.0/16}\n", "o.yaml"));
    const before = await everything(to);
    await expect(importDatastore(to, exp)).rejects.toThrow(new ImportError(`${to.description} already holds 1 weft record this export does not (first: /weft/resources/ippools/other): import into an empty datastore, so nothing in it is overwritten`));
    expect(await everything(to)).toEqual(before);
  });

  it("an import stopped part-way completes when run again; one record written meanwhile stops it, saying how far it got", async () => {
    const exp = await exportDatastore(await populated());
    const to = await fresh();
    // What a crash after the first records leaves.
    await to.txn(exp.records.slice(0, 3).map((r) => ({ op: "create" as const, key: r.key, value: r.value })));
    expect(await importDatastore(to, exp)).toEqual({ written: exp.records.length - 3, alreadyThere: 3 });
    const racing = await fresh();
    const realTxn = racing.txn.bind(racing);
    let calls = 0;
    racing.txn = async (ops) => {
      if (calls++ === 0) await realTxn([{ op: "create", key: ops[1].key, value: "someone else's" }]);
      return realTxn(ops);
    };
    await expect(importDatastore(racing, exp)).rejects.toThrow(/already exists: imported 0 of \d+ records into sqlite:.*; running the same import again completes it$/);
  });

  it("a file that is not an export is refused before anything is written, saying why", () => {
    const good = { format: EXPORT_FORMAT, from: "sqlite:/x", revision: 3, exportedAt: "t", records: [{ key: "/weft/a", value: "1" }] };
    const cases: Array<[string, string]> = [
      ["{", "not JSON: Expected property name or '}' in JSON at position 1"],
      ["[]", "not a JSON object"],
      [JSON.stringify({ ...good, format: "calico" }), 'format is "calico", not "weft-datastore-export/1"'],
      [JSON.stringify({ ...good, records: {} }), "no records list"],
      [JSON.stringify({ ...good, records: [{ key: "/weft/a", value: 1 }] }), "records[0] is not a key and a value, both strings"],
      [JSON.stringify({ ...good, records: [{ key: "/calico/a", value: "1" }] }), 'records[0]: key "/calico/a" is not under /weft/'],
      [JSON.stringify({ ...good, records: [good.records[0], good.records[0]] }), "records[1]: key /weft/a appears twice"],
    ];
    for (const [text, why] of cases) expect(() => parseExport(text, "f.json"), why).toThrow(new ExportFileError(`f.json: not a weft datastore export (${why}); make one with weft datastore export`));
    expect(parseExport(JSON.stringify(good), "f.json").records).toEqual(good.records);
  });

  it("any text: an export or an ExportFileError, never another error (2000 cases)", () => {
    const records = fc.array(fc.record({ key: fc.oneof(fc.string(), fc.string().map((s) => `/weft/${s}`)), value: fc.oneof(fc.string(), fc.integer()) }), { maxLength: 4 });
    const doc = fc.oneof(fc.string(), fc.json(), fc.record({ format: fc.constantFrom(EXPORT_FORMAT, "x"), records }).map((d) => JSON.stringify(d)));
    fc.assert(
      fc.property(doc, (text) => {
        try {
          parseExport(text, "f");
        } catch (err) {
          if (!(err instanceof ExportFileError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
