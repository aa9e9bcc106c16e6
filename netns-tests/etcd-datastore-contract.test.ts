// The datastore contract against a real etcd (Debian's etcd-server).
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { datastoreContract } from "../router/store/datastore-contract.test-helper.js";
import { openDatastore } from "../router/store/store.js";
import { EtcdServer } from "../router/lab/etcd.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const etcd = new EtcdServer({ dir: tempDir("etcd"), host: "127.0.0.1", port: 23790 });
beforeAll(() => etcd.start(), 30_000);
afterAll(() => etcd.stop());

let n = 0;
// Each case in its own key space of the one server.
datastoreContract("etcd", async () => {
  const s = await openDatastore(etcd.url);
  const scope = `/case${n++}`;
  return {
    description: s.description,
    get: (k) => s.get(scope + k).then((kv) => kv && { ...kv, key: kv.key.slice(scope.length) }),
    list: (p) => s.list(scope + p).then((r) => ({ ...r, items: r.items.map((kv) => ({ ...kv, key: kv.key.slice(scope.length) })) })),
    txn: (ops) => s.txn(ops.map((o) => ({ ...o, key: scope + o.key }))),
    watch: (p, rev, onEvents, onError) => s.watch(scope + p, rev, (ev) => onEvents(ev.map((e) => ({ ...e, key: e.key.slice(scope.length) }))), onError),
    close: () => s.close(),
  };
});

// etcd keeps every revision until compacted (each node compacts it each period, as
// Calico's kube-controllers does): the values stay, the history before goes, and asking
// for a revision compacted already says so rather than fail.
describe("etcd's history compacted", () => {
  it("keeps every current value, drops what came before the revision, and is a no-op the second time", async () => {
    const s = await openDatastore(etcd.url);
    try {
      let rev = 0;
      for (let i = 0; i < 20; i++) rev = await s.txn([{ op: "update", key: "/compact/k", value: `v${i}` }]);
      const mid = rev - 10;
      expect(await s.compact!(mid)).toBe(true);
      expect((await s.get("/compact/k"))?.value).toBe("v19");
      expect(await s.compact!(mid - 5)).toBe(false);
      // A watch from before the compaction cannot be served: it ends with an error (the node then reads everything again).
      const err = await new Promise<Error>((resolve) => {
        const w = s.watch("/compact/", mid - 5, () => {}, (e) => {
          w.stop();
          resolve(e);
        });
      });
      expect(err.message).toMatch(/^watch fell behind etcd's history \(compacted\)/);
    } finally {
      await s.close();
    }
  });
});
