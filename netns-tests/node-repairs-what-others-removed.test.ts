// Someone else changes what a running node installed: deletes weft0, its Node
// resource (or strips its tunnel address), writes garbage into the datastore, sets weft0 down, removes its address, deletes a route, flushes nftables, turns IPv4 forwarding off. The node puts it back
// (weft0, its state and the Node at once, the rest at its periodic check, every 30 s) and says so
// in its log. SIGHUP makes it read the datastore and check at once.
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

describe("a node repairs what others removed", () => {
  let external = "";
  // With the receive thread on, so recreating weft0 also restarts that thread (the
  // node-lifecycle test covers a node without it).
  const lab = useLab("trep", "ipip", { datastore: "sqlite", rxThread: true, setup: async (l) => void (external = await l.addExternalHost()) });
  const routes = () => lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
  const logTail = (lines = 40) => lab.exec("worker-1", ["tail", "-n", String(lines), path.join(lab.dir, "worker-1.log")]);

  it("weft0 deleted: made again at once with every route; pods reach across it", async () => {
    expect(await lab.waitConverged()).toBe(true); // the case before may have left a session reconnecting
    const before = await routes();
    await lab.exec("worker-1", ["ip", "link", "del", "weft0"]);
    const ms = await waitFor("routes back", async () => (await routes()) === before, 10_000);
    console.log(`[trep] weft0 deleted: routes back in ${ms} ms`);
    expect(await logTail()).toMatch(/weft0 was deleted while the node ran/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
    expect((await lab.nodeStatus("worker-1")).receiveThread).toBe(true);
  });

  it("its Node deleted while it runs: registered again with a tunnel address; pods reach again", async () => {
    expect(await lab.waitConverged()).toBe(true); // the case before may have left a session reconnecting
    const before = await routes();
    expect(await lab.weft(["delete", "node", "worker-1"])).toMatch(/^Node\(worker-1\) deleted/);
    const t0 = Date.now();
    let back = "";
    while (Date.now() - t0 < 15_000) {
      back = await lab.weft(["get", "node", "worker-1", "-o", "yaml"], { allowFail: true });
      if (/ipv4IPIPTunnelAddr/.test(back)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`[trep] Node deleted under the running node: registered again in ${Date.now() - t0} ms`);
    expect(back).toMatch(/ipv4Address: 10\.30\.0\.11\/24/);
    expect(await logTail()).toMatch(/this node's Node resource was deleted while it runs: registered it again/);
    const t1 = Date.now();
    while (!(await lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 })) && Date.now() - t1 < 20_000);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    await waitFor("worker-1's routes as they were", async () => (await routes()) === before, 20_000);
  });

  it("its Node applied without its tunnel address (a hand-written manifest): set back at once, where Calico keeps it under IPIP pools", async () => {
    const before = await lab.weft(["get", "node", "worker-1", "-o", "yaml"]);
    const fields = (yaml: string) => [/ipv4IPIPTunnelAddr: \S+/.exec(yaml)?.[0]];
    expect(fields(before).every(Boolean)).toBe(true);
    expect(before).not.toMatch(/VXLAN|vxlan/);
    await lab.apply("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: worker-1\nspec:\n  bgp:\n    ipv4Address: 10.30.0.11/24\n");
    const ms = await waitFor("the Node's tunnel fields back", async () => fields(await lab.weft(["get", "node", "worker-1", "-o", "yaml"])).every(Boolean), 10_000);
    console.log(`[trep] Node applied without its tunnel fields: set back in ${ms} ms`);
    expect(fields(await lab.weft(["get", "node", "worker-1", "-o", "yaml"]))).toEqual(fields(before));
    expect(await logTail()).toMatch(/this node's Node resource lost its tunnel address or VTEP MAC/);
  });

  it("a datastore record weft did not write (garbage under its keys): named in the log and node status, and the nodes still follow the datastore", async () => {
    const key = "/weft/ipam/blocks/192.168.250.0-26";
    // Written as a hand edit would be: straight into the datastore, around weft.
    const db = new Database(path.join(lab.dir, "weft.db"), { timeout: 10_000 });
    const put = (k: string, value: string) => {
      const rev = (db.prepare("SELECT rev FROM meta").get() as { rev: number }).rev + 1;
      db.prepare("INSERT INTO kv (key, value, mod_rev) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev").run(k, value, rev);
      db.prepare("INSERT INTO events (rev, key, value) VALUES (?, ?, ?)").run(rev, k, value);
      db.prepare("UPDATE meta SET rev = ?").run(rev);
    };
    // Garbage, a pool of the right shape whose selector does not parse, and worker-1's own Node garbled.
    const brokenPool = { apiVersion: "projectcalico.org/v3", kind: "IPPool", metadata: { name: "hand-edited" }, spec: { cidr: "10.99.0.0/16", blockSize: 26, ipipMode: "Always", vxlanMode: "Never", natOutgoing: false, disabled: false, nodeSelector: "rack ==" } };
    const nodeKey = "/weft/resources/nodes/worker-1";
    db.transaction(() => {
      put(key, "{garbage");
      put("/weft/resources/ippools/hand-edited", JSON.stringify(brokenPool));
      put(nodeKey, "[]"); // worker-1's own Node, garbled
    })();
    db.close();
    await waitFor("worker-1 names the record", async () => key in ((await lab.nodeStatus("worker-1")).unreadableRecords as Record<string, string>), 10_000);
    // Status has the record from the read; the log line comes from the sync after the one
    // that registers worker-1's garbled Node again, a moment later.
    await waitFor("worker-1 logs the skipped records", async () => /datastore records weft cannot read are skipped/.test(await logTail(400)), 10_000);
    const log = await logTail(400);
    expect(log).toMatch(/datastore records weft cannot read are skipped/);
    // Its own Node is worker-1's to write: registered again over the garbage.
    await waitFor("worker-1's Node readable again", async () => /ipv4Address: 10\.30\.0\.11\/24/.test(await lab.weft(["get", "node", "worker-1", "-o", "yaml"], { allowFail: true })), 10_000);
    expect(await logTail(400)).toMatch(/this node's Node record cannot be read \(written around weft\): registered it again over it/);
    expect(log).toMatch(/IPPool\(hand-edited\): selector \\"rack ==\\": expected a quoted value at position 8; it selects no node/);
    // worker-2 fills its block and claims another: worker-1 gets the route to it.
    const given = JSON.parse(await lab.weft(["ipam", "assign", "--node", "worker-2", "--handle", "fill", "--count", "64"])) as Array<{ block: string }>;
    const blocks = [...new Set(given.map((g) => g.block))];
    expect(blocks.length).toBe(2);
    const ms = await waitFor("routes to both of worker-2's blocks on worker-1", async () => {
      const r = await routes();
      return blocks.every((b) => r.includes(`${b} via 10.30.0.12`));
    }, 15_000);
    console.log(`[trep] with unreadable records in the datastore, worker-2's blocks ${blocks.join(", ")} were in worker-1's routes ${ms} ms after the assignment`);
    expect((await lab.nodeStatus("worker-1")).datastore).toMatchObject({ reachable: true });
  });

  it("weft0 set down and its address removed, a route deleted, nftables flushed and IPv4 forwarding turned off: all back by the next periodic check (weft0 and its routes at once); pods reach each other and the outside", async () => {
    expect(await lab.waitConverged()).toBe(true); // the case before may have left a session reconnecting
    const before = await routes();
    const address = () => lab.exec("worker-1", ["ip", "-4", "-o", "addr", "show", "dev", "weft0"]);
    const addressBefore = await address();
    expect(addressBefore).toMatch(/inet 192\.168\.\S+\/32/);
    await lab.exec("worker-1", ["ip", "link", "set", "weft0", "down"]);
    await lab.exec("worker-1", ["ip", "addr", "flush", "dev", "weft0"]);
    const block = before.split("\n").find((l) => l.startsWith("blackhole "))!;
    await lab.exec("worker-1", ["ip", "route", "del", ...block.replace(" proto 87", "").trim().split(/\s+/)]);
    await lab.exec("worker-1", ["nft", "flush", "ruleset"]);
    await lab.exec("worker-1", ["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    expect(await routes()).not.toBe(before);
    const forwarding = async () => (await lab.exec("worker-1", ["cat", "/proc/sys/net/ipv4/ip_forward"])).trim() === "1";
    const ms = await waitFor("routes, nat table and forwarding back", async () => (await routes()) === before && (await lab.exec("worker-1", ["nft", "list", "tables"])).includes("table ip weft") && (await forwarding()), 40_000);
    console.log(`[trep] weft0 down, ${block.trim()} deleted, nft flushed, IPv4 forwarding off: all back in ${ms} ms`);
    expect(await address()).toBe(addressBefore);
    const log = await logTail();
    expect(log).toMatch(/weft0 was changed by someone else/);
    expect(log).toMatch(/weft0's address was changed by someone else/);
    expect(log).toMatch(/1 of weft's routes were removed or changed outside weft/);
    expect(log).toMatch(/IPv4 forwarding was turned off by someone else/);
    expect(log).toMatch(/weft's nftables table \(natOutgoing, the mark on the nodes' tunnel traffic\) was removed by someone else/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    expect(await lab.ping("pod-1", external, { count: 2 })).toBe(true);
  });

  it("a route deleted, then SIGHUP (systemctl reload weft-node): the node reads the datastore again and puts the route back at once, without waiting for the periodic check, and runs on", async () => {
    expect(await lab.waitConverged()).toBe(true);
    const before = await routes();
    const tunnel = before.split("\n").find((l) => / dev weft0 /.test(l))!;
    await lab.exec("worker-1", ["ip", "route", "del", tunnel.split(/\s+/)[0]]);
    expect(await routes()).not.toBe(before);
    lab.signalNode("worker-1", "SIGHUP");
    const ms = await waitFor("the route back after SIGHUP", async () => (await routes()) === before, 10_000);
    console.log(`[trep] ${tunnel.split(/\s+/)[0]} deleted, SIGHUP: back in ${ms} ms`);
    expect(ms).toBeLessThan(5000);
    expect(lab.nodeRunning("worker-1")).toBe(true);
    const log = await logTail();
    expect(log).toMatch(/SIGHUP: reading the datastore again and checking what is installed/);
    expect(log).toMatch(/1 of weft's routes were removed or changed outside weft/);
  });
});
