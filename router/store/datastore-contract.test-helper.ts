// The behaviour every datastore must have, run against SQLite (unit) and etcd (netns-tests).
import { describe, expect, it } from "vitest";
import { ConflictError, NotFoundError, type Datastore, type WatchEvent } from "./store.js";

export function datastoreContract(name: string, open: () => Promise<Datastore>): void {
  describe(`datastore contract: ${name}`, () => {
    it("creates once, then refuses a second create of the same key", async () => {
      const s = await open();
      await s.txn([{ op: "create", key: "/t/a", value: "1" }]);
      await expect(s.txn([{ op: "create", key: "/t/a", value: "2" }])).rejects.toBeInstanceOf(ConflictError);
      expect((await s.get("/t/a"))?.value).toBe("1");
      await s.close();
    });

    it("compare-and-swap: an update against a stale revision fails and changes nothing", async () => {
      const s = await open();
      await s.txn([{ op: "create", key: "/t/b", value: "1" }]);
      const kv = (await s.get("/t/b"))!;
      await s.txn([{ op: "update", key: "/t/b", value: "2", modRevision: kv.modRevision }]);
      await expect(s.txn([{ op: "update", key: "/t/b", value: "3", modRevision: kv.modRevision }])).rejects.toBeInstanceOf(ConflictError);
      expect((await s.get("/t/b"))?.value).toBe("2");
      await expect(s.txn([{ op: "delete", key: "/t/none", modRevision: 5 }])).rejects.toBeInstanceOf(NotFoundError);
      await s.close();
    });

    it("applies a multi-key transaction all or nothing", async () => {
      const s = await open();
      await s.txn([{ op: "create", key: "/t/c1", value: "x" }]);
      await expect(
        s.txn([
          { op: "create", key: "/t/c2", value: "y" },
          { op: "create", key: "/t/c1", value: "z" },
        ]),
      ).rejects.toBeInstanceOf(ConflictError);
      expect(await s.get("/t/c2")).toBeUndefined();
      await s.close();
    });

    it("lists by prefix with a revision, and watches changes after it", async () => {
      const s = await open();
      await s.txn([{ op: "create", key: "/w/1", value: "a" }]);
      const { items, revision } = await s.list("/w/");
      expect(items.map((i) => i.key)).toEqual(["/w/1"]);
      const seen: WatchEvent[] = [];
      const w = s.watch("/w/", revision, (ev) => seen.push(...ev), () => {});
      await new Promise((r) => setTimeout(r, 300));
      await s.txn([{ op: "create", key: "/w/2", value: "b" }]);
      await s.txn([{ op: "create", key: "/other/3", value: "c" }]);
      await s.txn([{ op: "delete", key: "/w/1" }]);
      const until = Date.now() + 3000;
      while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      w.stop();
      expect(seen.map((e) => `${e.type} ${e.key}`)).toEqual(["put /w/2", "delete /w/1"]);
      await s.close();
    });
  });
}
