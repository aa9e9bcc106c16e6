// Someone else changes what a running node installed: deletes weft0, its Node
// resource (or strips its tunnel address), sets weft0 down, removes its address, deletes a route, flushes nftables. The node puts it back
// (weft0 and the Node at once, the rest at its periodic check, every 30 s) and says so
// in its log.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

describe("a node repairs what others removed", () => {
  let external = "";
  // With the receive thread on, so recreating weft0 also restarts that thread (the
  // node-lifecycle test covers a node without it).
  const lab = useLab("trep", "ipip", { datastore: "sqlite", rxThread: true, setup: async (l) => void (external = await l.addExternalHost()) });
  const routes = () => lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
  const logTail = () => lab.exec("worker-1", ["tail", "-n", "40", path.join(lab.dir, "worker-1.log")]);

  it("weft0 deleted: made again at once with every route; pods reach across it", async () => {
    const before = await routes();
    await lab.exec("worker-1", ["ip", "link", "del", "weft0"]);
    const ms = await waitFor("routes back", async () => (await routes()) === before, 10_000);
    console.log(`[trep] weft0 deleted: routes back in ${ms} ms`);
    expect(await logTail()).toMatch(/weft0 was deleted while the node ran/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
    expect((await lab.nodeStatus("worker-1")).receiveThread).toBe(true);
  });

  it("its Node deleted while it runs: registered again with a tunnel address; pods reach again", async () => {
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

  it("weft0 set down and its address removed, a route deleted and nftables flushed: all back at the next periodic check; pods reach each other and the outside", async () => {
    const before = await routes();
    const address = () => lab.exec("worker-1", ["ip", "-4", "-o", "addr", "show", "dev", "weft0"]);
    const addressBefore = await address();
    expect(addressBefore).toMatch(/inet 192\.168\.\S+\/32/);
    await lab.exec("worker-1", ["ip", "link", "set", "weft0", "down"]);
    await lab.exec("worker-1", ["ip", "addr", "flush", "dev", "weft0"]);
    const block = before.split("\n").find((l) => l.startsWith("blackhole "))!;
    await lab.exec("worker-1", ["ip", "route", "del", ...block.replace(" proto 87", "").trim().split(/\s+/)]);
    await lab.exec("worker-1", ["nft", "flush", "ruleset"]);
    expect(await routes()).not.toBe(before);
    const ms = await waitFor("routes and nat table back", async () => (await routes()) === before && (await lab.exec("worker-1", ["nft", "list", "tables"])).includes("table ip weft"), 40_000);
    console.log(`[trep] weft0 down, ${block.trim()} deleted, nft flushed: all back in ${ms} ms`);
    expect(await address()).toBe(addressBefore);
    const log = await logTail();
    expect(log).toMatch(/weft0 was changed by someone else/);
    expect(log).toMatch(/weft0's address was changed by someone else/);
    expect(log).toMatch(/the natOutgoing table was removed by someone else/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    expect(await lab.ping("pod-1", external, { count: 2 })).toBe(true);
  });
});
