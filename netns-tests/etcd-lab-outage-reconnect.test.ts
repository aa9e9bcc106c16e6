// The lab on etcd (running in the gateway namespace): pods reach each other; stopping
// etcd does not stop forwarding; nodes say so, reconnect when it returns, and resume
// watching (a pool change applied afterwards reaches them); a node started while etcd
// is down waits for it. A node cut off from etcd by a partition (packets dropped,
// nothing refused) still applies what BGP brings, says so, and weft commands there
// fail in seconds with the reason rather than hang.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";

describe("a weft cluster on etcd, and an etcd outage", () => {
  const lab = useLab("tetcd", "ipip", { datastore: "etcd" });
  // Log lines written since mark() was last called.
  const marks = new Map<string, number>();
  const full = (host: string) => readFileSync(path.join(lab.dir, `${host}.log`), "utf8");
  const mark = () => ["master", "worker-1", "worker-2", "worker-3"].forEach((h) => marks.set(h, full(h).length));
  const log = (host: string) => full(host).slice(marks.get(host) ?? 0);
  it("runs the lab with --datastore etcd://10.30.0.1:2379: every pod reaches every other", async () => {
    expect(lab.datastoreURL).toBe("etcd://10.30.0.1:2379");
    const m = await lab.reachability();
    expect(Object.values(m).flatMap((r) => Object.values(r)).every(Boolean)).toBe(true);
  });

  it("with etcd stopped, forwarding goes on and the nodes say the datastore is unreachable", async () => {
    mark();
    expect(log("worker-1")).toBe("");
    await lab.etcdServer!.stop();
    const t0 = Date.now();
    await waitFor("worker-1 to log the outage", () => /datastore unreachable/.test(log("worker-1")));
    console.log(`[tetcd] worker-1 noticed the outage after ${Date.now() - t0} ms`);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
    expect((await lab.nodeStatus("worker-1")).datastore).toMatchObject({ reachable: false });
    // What an operator types: weft node status says it too.
    const text = await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "status", "--control", lab.controlSocket("worker-1")]);
    expect(text).toMatch(/Datastore etcd:\/\/10\.30\.0\.1:2379 is not answering \(.+\): forwarding continues with the last state it gave; what BGP brings is still applied\./);
    const metrics = await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "metrics", "--control", lab.controlSocket("worker-1")]);
    expect(metrics).toMatch(/weft_datastore_reachable\{datastore="etcd:\/\/10\.30\.0\.1:2379"\} 0/);
  });

  it("when etcd returns, nodes reconnect, say so, and follow changes again", async () => {
    mark();
    await lab.etcdServer!.start();
    const t0 = Date.now();
    await waitFor("every node to resume watching", () => ["master", "worker-1", "worker-2", "worker-3"].every((h) => /datastore reachable again; resumed watching/.test(log(h))));
    console.log(`[tetcd] all nodes resumed ${Date.now() - t0} ms after etcd came back`);
    await lab.apply(poolManifest("direct"));
    await waitFor("worker-1 to route directly", async () => (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).split("\n").filter((l) => / dev eth0/.test(l)).length === 3, 10_000);
  });

  it("a node started while etcd is down waits for it, saying so, and comes up when it returns", async () => {
    await lab.etcdServer!.stop();
    mark();
    await lab.stopNode("worker-3");
    const restarted = lab.restartNode("worker-3", 60_000);
    await waitFor("worker-3 to say it is waiting", () => /the datastore does not answer yet; waiting for it/.test(log("worker-3")));
    const t0 = Date.now();
    await lab.etcdServer!.start();
    await restarted;
    console.log(`[tetcd] worker-3 came up ${Date.now() - t0} ms after etcd returned`);
    expect(log("worker-3")).toMatch(/node running/);
    // The pool is direct by now (the test before): worker-3 routes the three other blocks out of eth0.
    await waitFor("worker-3 to route the other blocks again", async () => (await lab.exec("worker-3", ["ip", "route", "show", "proto", "87"])).split("\n").filter((l) => / dev eth0/.test(l)).length === 3, 15_000);
  });

  // worker-1's packets to and from etcd dropped: no refusal, no reset, as a partition or
  // a firewall does. (Before: its syncs waited on reads that never ended, so no route
  // BGP brought went in and it said nothing; weft commands there hung for good.)
  const cut = (on: boolean) =>
    lab.exec("worker-1", ["nft", on ? "add table inet tetcd-cut { chain out { type filter hook output priority 0; tcp dport 2379 drop; }; chain in { type filter hook input priority 0; tcp sport 2379 drop; }; }" : "delete table inet tetcd-cut"], { allowFail: !on });
  let claimed = "";
  it("a node cut off from etcd still installs the block BGP brings, says within 30 s that the datastore does not answer, and a command there fails within 30 s rather than hang", async () => {
    mark();
    await cut(true);
    try {
      const t0 = Date.now();
      // worker-2 takes a second block (etcd answers it); BGP tells worker-1.
      const got = JSON.parse(await lab.exec("gw", [process.execPath, lab.cli(), "ipam", "assign", "--node", "worker-2", "--handle", "tetcd-cut", "--count", "64", "--datastore", lab.datastoreURL])) as Array<{ block: string }>;
      claimed = got.at(-1)!.block;
      await waitFor(`worker-1 to route ${claimed}`, async () => (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).includes(`${claimed} via 10.30.0.12`), 10_000);
      console.log(`[tetcd] cut off from etcd, worker-1 routed worker-2's new block ${claimed} ${Date.now() - t0} ms after it was claimed`);
      await waitFor("worker-1 to say the datastore does not answer", () => /datastore unreachable/.test(log("worker-1")), 30_000);
      console.log(`[tetcd] worker-1 said the datastore does not answer ${Date.now() - t0} ms after the cut`);
      expect((await lab.nodeStatus("worker-1")).datastore).toMatchObject({ reachable: false });
      const t1 = Date.now();
      await expect(lab.exec("worker-1", [process.execPath, lab.cli(), "get", "nodes", "--datastore", lab.datastoreURL], { timeoutMs: 60_000 })).rejects.toThrow(/did not answer \(no answer within 5 s\)/);
      console.log(`[tetcd] weft get nodes on worker-1 failed after ${Date.now() - t1} ms`);
      expect(Date.now() - t1).toBeLessThan(30_000);
      expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    } finally {
      await cut(false);
    }
  });

  it("once the cut ends, it reads the datastore again and watches it", async () => {
    const t0 = Date.now();
    await waitFor("worker-1 to resume watching", () => /datastore reachable again; resumed watching/.test(log("worker-1")), 30_000);
    console.log(`[tetcd] worker-1 resumed watching ${Date.now() - t0} ms after the cut ended`);
    expect((await lab.nodeStatus("worker-1")).datastore).toMatchObject({ reachable: true });
    expect(await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).toContain(`${claimed} via 10.30.0.12`);
  });

  // Two members, one cut off (a port on the gateway whose packets are dropped): the
  // client picks a member at random per call and waits out a cut one's deadline (5 s)
  // before trying the other. One failure leaves that member alone for a while, so a
  // command pays one deadline at most. (Before: a member was left alone only after 3
  // failures in a row: this command took 15.5 s each time, three deadlines.)
  it("with one of two etcd members cut off, a command of many calls pays one 5 s deadline at most", async () => {
    await lab.exec("gw", ["nft", "add table inet tetcd-member { chain in { type filter hook input priority 0; tcp dport 2399 drop; }; }"]);
    try {
      const url = `${lab.datastoreURL},10.30.0.1:2399`;
      const took: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        await lab.exec("worker-1", [process.execPath, lab.cli(), "ipam", "assign", "--node", "worker-2", "--handle", `tetcd-m${i}`, "--count", "4", "--datastore", url], { timeoutMs: 90_000 });
        took.push(Date.now() - t0);
        await lab.exec("worker-1", [process.execPath, lab.cli(), "ipam", "release", "--handle", `tetcd-m${i}`, "--datastore", lab.datastoreURL]);
      }
      console.log(`[tetcd] ipam assign --count 4 with one of two members cut off: ${took.join(", ")} ms`);
      for (const ms of took) expect(ms).toBeLessThan(9000);
    } finally {
      await lab.exec("gw", ["nft", "delete table inet tetcd-member"], { allowFail: true });
    }
  });
});
