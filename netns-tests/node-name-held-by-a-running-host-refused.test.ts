// Two hosts with one node name, as a machine cloned with its hostname has: the second
// is refused while the first runs (its BGP port answers at the Node's address), naming
// the other host; the first keeps its Node, its routes and its pods. Before, the second
// took the Node over: the first dropped every route and both served one block, so pods
// on the two would have been given the same addresses. Once the first is stopped (as a
// host whose address changed is), the same start takes the name over, saying so.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeNamespace, useLab, waitFor, weftIn } from "./helpers.js";
import { controlGet } from "../router/control/client.js";
import { sh } from "../router/lab/sh.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const CLONE = "tdup-clone";

describe("a second host with a running node's name", () => {
  const dir = tempDir("tdup");
  const lab = useLab("tdup", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      // Another host on worker-1's subnet, as a clone of it would be (10.30.0.20).
      await removeNamespace(CLONE);
      await sh("ip", ["netns", "add", CLONE]);
      await sh("ip", ["-n", CLONE, "link", "set", "lo", "up"]);
      await sh("ip", ["-n", l.gw, "link", "add", "v-clone", "type", "veth", "peer", "name", "eth0", "netns", CLONE]);
      await sh("ip", ["-n", l.gw, "link", "set", "v-clone", "master", "brA", "up"]);
      await sh("ip", ["-n", CLONE, "addr", "add", "10.30.0.20/24", "dev", "eth0"]);
      await sh("ip", ["-n", CLONE, "link", "set", "eth0", "up"]);
      await sh("ip", ["-n", CLONE, "route", "add", "default", "via", "10.30.0.1"]);
    },
  });
  afterAll(async () => {
    await weftIn(CLONE, ["node", "reset"]).catch(() => undefined);
    await removeNamespace(CLONE);
  });
  const sock = path.join(dir, "clone.sock");
  const startClone = () => weftIn(CLONE, ["node", "run", "--datastore", lab.datastoreURL, "--name", "worker-1", "--control", sock]);
  const nodeAddress = async () => /worker-1\s+\S+\s+(\S+)/.exec(await lab.weft(["get", "nodes", "-o", "wide"]))?.[1];

  it("while worker-1 runs, a host started with its name is refused, naming the other host; worker-1 keeps its Node and routes", async () => {
    const routesBefore = await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
    const t0 = Date.now();
    const r = await startClone();
    console.log(`[tdup] the clone: exit ${r.code} after ${Date.now() - t0} ms: ${r.stderr.trim()}`);
    expect(r.stderr).toContain('node "worker-1" is running on another host (10.30.0.11, whose BGP port 179 answers): two hosts have the same node name');
    expect(r.code).toBe(2);
    expect(await nodeAddress()).toBe("10.30.0.11/24");
    expect(await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).toBe(routesBefore);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
  });

  it("once worker-1 is stopped (as a host whose address changed), the same start takes the name over, saying so", async () => {
    await lab.stopNode("worker-1");
    const clone = spawn("ip", ["netns", "exec", CLONE, process.execPath, lab.cli(), "node", "run", "--datastore", lab.datastoreURL, "--name", "worker-1", "--control", sock], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    clone.stdout.on("data", (d: Buffer) => (out += d.toString()));
    clone.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor("the clone to run", async () => controlGet(sock, "/health/live").then(() => true, () => false), 20_000);
      expect(out).toMatch(/"was":"10\.30\.0\.11","now":"10\.30\.0\.20","msg":"this node's address changed \(nothing answers on the old one\): taking the Node over"/);
      expect(await nodeAddress()).toBe("10.30.0.20/24");
    } finally {
      clone.kill("SIGTERM");
      await new Promise((r) => clone.once("close", r));
    }
  });
});
