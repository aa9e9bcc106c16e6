// A cluster outgrows one host's SQLite file: weft datastore export, then import into a
// real etcd (Debian's etcd-server). What weft get and weft ipam show print is the same
// before and after, the export file is readable by its owner only, a second import
// changes nothing, and an etcd that already holds other weft records is refused.
import { spawnSync } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireRoot } from "./helpers.js";
import { EtcdServer } from "../router/lab/etcd.js";
import { projectRoot } from "../router/native/index.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
const dir = tempDir("tmove");
const etcd = new EtcdServer({ dir: path.join(dir, "etcd"), host: "127.0.0.1", port: 23820 });
const sqlite = `sqlite:${path.join(dir, "weft.db")}`;
const weft = (args: string[], datastore: string) => {
  const r = spawnSync(process.execPath, [cli, ...args, "--datastore", datastore], { encoding: "utf8", timeout: 30_000 });
  console.log(`[tmove] weft ${args.join(" ")} --datastore ${datastore} (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r;
};
/** What a user reads of a datastore; resourceVersion is each datastore's own revision, so it is left out. */
const views = (ds: string) => [["get", "ippool", "-o", "yaml"], ["get", "node", "-o", "wide"], ["get", "bgpconfig"], ["ipam", "show", "--show-blocks", "--show-borrowed"], ["ipam", "show", "--show-configuration"]].map((a) => weft(a, ds).stdout.replace(/^ *resourceVersion: .*\n/gm, ""));

describe("weft datastore export and import: SQLite to etcd", () => {
  beforeAll(async () => {
    requireRoot();
    await etcd.start();
    writeFileSync(path.join(dir, "cluster.yaml"), `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.244.0.0/16, blockSize: 29, vxlanMode: Always, natOutgoing: true}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: worker-1}
spec: {bgp: {ipv4Address: 10.30.0.11/24}}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64600, nodeToNodeMeshEnabled: true}
`);
    expect(weft(["apply", "-f", path.join(dir, "cluster.yaml")], sqlite).status).toBe(0);
    expect(weft(["ipam", "configure", "--strictaffinity", "true"], sqlite).status).toBe(0);
    expect(weft(["ipam", "assign", "--node", "worker-1", "--handle", "k8s-pod-network.p", "--count", "12"], sqlite).status).toBe(0);
  }, 60_000);
  afterAll(() => etcd.stop());

  it("the etcd copy reads as the SQLite file did; the export is its owner's only", () => {
    const file = path.join(dir, "export.json");
    const exp = weft(["datastore", "export", "-f", file], sqlite);
    expect(exp.status).toBe(0);
    expect(exp.stderr).toMatch(new RegExp(`^exported 6 records from ${sqlite.replaceAll(".", "\\.")} \\(revision \\d+\\) to ${file.replaceAll(".", "\\.")}\\n$`));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const imp = weft(["datastore", "import", "-f", file], etcd.url);
    expect(imp.status).toBe(0);
    expect(imp.stdout).toMatch(new RegExp(`^imported 6 records into ${etcd.url}; exported from ${sqlite.replaceAll(".", "\\.")} at revision \\d+, 20\\S+Z\\n$`));
    expect(views(etcd.url)).toEqual(views(sqlite));
    // IPAM goes on in etcd where it left off in SQLite.
    const next = (ds: string) => JSON.parse(weft(["ipam", "assign", "--node", "worker-1", "--handle", "after"], ds).stdout)[0].address;
    expect(next(etcd.url)).toBe(next(sqlite));
  });

  it("a second import of the same file changes nothing; into an etcd with other records, refused (exit 1)", () => {
    const file = path.join(dir, "export.json");
    const fresh = path.join(dir, "again.json");
    expect(weft(["datastore", "export", "-f", fresh], etcd.url).status).toBe(0);
    // The etcd copy now holds one more address than the file: the file is not what it holds.
    const refused = weft(["datastore", "import", "-f", file], etcd.url);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^weft: etcd:\/\/127\.0\.0\.1:23820 already holds 1 weft record this export does not \(first: \/weft\/ipam\/blocks\/10\.244\.\S+\): import into an empty datastore, so nothing in it is overwritten\n$/);
    const same = weft(["datastore", "import", "-f", fresh], etcd.url);
    expect(same.status).toBe(0);
    expect(same.stdout).toMatch(/^imported 0 records into \S+ \(6 were there from an earlier import of it\)/);
  });
});
