import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { datastoreContract } from "./datastore-contract.test-helper.js";
import { openDatastore } from "./store.js";

const dir = mkdtempSync(path.join(tmpdir(), "weft-store-"));
let n = 0;
datastoreContract("sqlite", () => openDatastore(`sqlite:${path.join(dir, `t${n++}.db`)}`));

describe("datastore URLs", () => {
  it("say what is wrong with a bad URL", async () => {
    await expect(openDatastore("mysql://x")).rejects.toThrow(/unknown kind; use sqlite:PATH or etcd:\/\/HOST:PORT/);
    await expect(openDatastore("etcd://nohostport")).rejects.toThrow(/expected etcd:\/\/HOST:PORT/);
    await expect(openDatastore("sqlite:")).rejects.toThrow(/give a file/);
  });
});
