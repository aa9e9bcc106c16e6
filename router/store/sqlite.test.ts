import { chmodSync, existsSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { datastoreContract } from "./datastore-contract.test-helper.js";
import { defaultDatastore, openDatastore } from "./store.js";
import { noSpaceHint } from "./sqlite.js";
import { tempDir } from "../temp-dir.test-helper.js";

const dir = tempDir("store");
let n = 0;
datastoreContract("sqlite", () => openDatastore(`sqlite:${path.join(dir, `t${n++}.db`)}`));

describe("datastore URLs", () => {
  it("say what is wrong with a bad URL", async () => {
    await expect(openDatastore("mysql://x")).rejects.toThrow(/unknown kind; use sqlite:PATH, etcd:\/\/HOST:PORT\[,HOST:PORT\] or etcds:\/\/ \(TLS\)/);
    await expect(openDatastore("etcd://nohostport")).rejects.toThrow(/expected etcd:\/\/HOST:PORT/);
    await expect(openDatastore("etcds://h:1", { tls: { cert: "/x.crt" } })).rejects.toThrow("etcds: ETCD_CERT_FILE and ETCD_KEY_FILE go together");
    await expect(openDatastore("etcds://h:1", { tls: { ca: "/nonexistent/ca.crt" } })).rejects.toThrow("etcds: ETCD_CA_CERT_FILE /nonexistent/ca.crt cannot be read (ENOENT)");
    await expect(openDatastore("sqlite:")).rejects.toThrow(/give a file/);
  });

  it("default to WEFT_DATASTORE, else Calico's ETCD_ENDPOINTS (https: TLS), else the SQLite file", () => {
    expect(defaultDatastore({ WEFT_DATASTORE: "sqlite:/x.db", ETCD_ENDPOINTS: "http://a:1" })).toBe("sqlite:/x.db");
    expect(defaultDatastore({ ETCD_ENDPOINTS: "https://10.0.0.1:2379,https://10.0.0.2:2379" })).toBe("etcds://10.0.0.1:2379,10.0.0.2:2379");
    expect(defaultDatastore({})).toBe("sqlite:/var/lib/weft/weft.db");
    expect(() => defaultDatastore({ ETCD_ENDPOINTS: "10.0.0.1:2379" })).toThrow(/expected http:\/\/HOST:PORT or https:\/\/HOST:PORT/);
  });

  it("name the file when its directory cannot be made, at once (node's recursive mkdir never returned under /proc)", async () => {
    await expect(openDatastore("sqlite:/proc/weft-none/w.db")).rejects.toThrow("datastore sqlite:/proc/weft-none/w.db: ENOENT");
  }, 5000);

  it("name a full file system as the cause (SQLite itself says only \"disk I/O error\"), and add nothing otherwise", () => {
    expect(noSpaceHint("/var/lib/weft", () => ({ bavail: 0, bsize: 4096 }))).toBe(' (the file system holding /var/lib/weft is full: free some space there, see "df /var/lib/weft")');
    expect(noSpaceHint("/var/lib/weft", () => ({ bavail: 12, bsize: 4096 }))).toBe("");
    expect(noSpaceHint("/nonexistent", () => { throw new Error("ENOENT"); })).toBe("");
  });

  it("name the file when it is not a database", async () => {
    const file = path.join(dir, "not-a-db.db");
    writeFileSync(file, "hello\n");
    await expect(openDatastore(`sqlite:${file}`)).rejects.toThrow(`datastore sqlite:${file}: file is not a database`);
  });

  it("leave a missing SQLite file alone for commands that only read or remove, and create it otherwise", async () => {
    const file = path.join(dir, "typo", "weft.db");
    await expect(openDatastore(`sqlite:${file}`, { create: false })).rejects.toThrow(/no such file \("weft apply" or "weft node run" creates it\)/);
    expect(existsSync(path.dirname(file))).toBe(false);
    const made = await openDatastore(`sqlite:${file}`);
    await made.close();
    const again = await openDatastore(`sqlite:${file}`, { create: false });
    await again.close();
  });

  it("create a new SQLite file (BGP passwords live in it) readable by its owner only, and leave an existing file's mode alone", async () => {
    const file = path.join(dir, "private", "weft.db");
    const store = await openDatastore(`sqlite:${file}`);
    await store.txn([{ op: "create", key: "/k", value: "v" }]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
    await store.close();
    chmodSync(file, 0o640);
    await (await openDatastore(`sqlite:${file}`)).close();
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });
});
