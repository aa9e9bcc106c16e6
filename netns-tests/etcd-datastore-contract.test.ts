// The datastore contract against a real etcd (Debian's etcd-server).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { datastoreContract } from "../router/store/datastore-contract.test-helper.js";
import { openDatastore } from "../router/store/store.js";
import { EtcdServer } from "../router/lab/etcd.js";

const etcd = new EtcdServer({ dir: mkdtempSync(path.join(tmpdir(), "weft-etcd-")), host: "127.0.0.1", port: 23790 });
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
