// weft bench bgp: N node processes in namespaces on one bridge, one SQLite datastore;
// reports the time from the last node's start until every node has every other
// node's block, for a full mesh or for R route reflectors with N clients.
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { controlGet } from "../control/client.js";
import { projectRoot } from "../native/index.js";
import { nsExec, sh } from "../lab/sh.js";

export interface ScaleResult {
  nodes: number;
  reflectors: number;
  topology: string;
  convergeSeconds: number;
  startSeconds: number;
  sessionsPerClient: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function bgpScale(opts: { nodes: number; reflectors: number; prefix: string; progress: (l: string) => void; timeoutS?: number }): Promise<ScaleResult> {
  const { nodes: n, reflectors: r, prefix } = opts;
  const dir = path.join("/run/weft-lab", prefix);
  const total = n + r;
  const name = (i: number) => (i < r ? `rr${i + 1}` : `n${i - r + 1}`);
  const addr = (i: number) => `10.50.${Math.floor((i + 10) / 250)}.${((i + 10) % 250) + 1}`;
  const ns = (i: number) => `${prefix}-${name(i)}`;
  const ds = `sqlite:${path.join(dir, "weft.db")}`;
  const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
  const cleanup = async () => {
    const list = (await sh("ip", ["-j", "netns", "list"], { allowFail: true })) || "[]";
    for (const { name: x } of JSON.parse(list) as Array<{ name: string }>) {
      if (!x.startsWith(`${prefix}-`)) continue;
      for (const pid of (await sh("ip", ["netns", "pids", x], { allowFail: true })).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* gone */
        }
      }
      await sh("ip", ["netns", "del", x], { allowFail: true });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  await cleanup();
  mkdirSync(dir, { recursive: true });
  // The ARP table limits are global across namespaces: 50 namespaces x 49 neighbours
  // overflow the default gc_thresh3 (1024) and connects fail with ENOBUFS. Raise them.
  const thresh = readFileSync("/proc/sys/net/ipv4/neigh/default/gc_thresh3", "utf8").trim();
  if (Number(thresh) < total * total * 2) {
    opts.progress(`raising net.ipv4.neigh.default.gc_thresh1..3 (was ${thresh}): ${total} hosts on one L2 segment need ~${total * total} ARP entries here`);
    writeFileSync("/proc/sys/net/ipv4/neigh/default/gc_thresh3", String(total * total * 4));
    writeFileSync("/proc/sys/net/ipv4/neigh/default/gc_thresh2", String(total * total * 2));
    writeFileSync("/proc/sys/net/ipv4/neigh/default/gc_thresh1", String(total * total));
  }
  try {
    opts.progress(`building ${total} namespaces on one bridge`);
    const br = `${prefix}-br`;
    await sh("ip", ["netns", "add", br]);
    await nsExec(br, ["ip", "link", "add", "br0", "type", "bridge"]);
    await nsExec(br, ["ip", "link", "set", "br0", "up"]);
    for (let i = 0; i < total; i++) {
      await sh("ip", ["netns", "add", ns(i)]);
      await nsExec(br, ["ip", "link", "add", "name", `v${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns(i)]);
      await nsExec(br, ["ip", "link", "set", `v${i}`, "master", "br0", "up"]);
      await nsExec(ns(i), ["ip", "addr", "add", `${addr(i)}/16`, "dev", "eth0"]);
      await nsExec(ns(i), ["ip", "link", "set", "eth0", "up"]);
      await nsExec(ns(i), ["ip", "link", "set", "lo", "up"]);
    }
    // Reflectors: labelled Nodes with a cluster ID, one BGPPeer, mesh off (before any node starts).
    if (r > 0) {
      const docs = [];
      for (let i = 0; i < r; i++) docs.push(`apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: ${name(i)}, labels: {route-reflector: "true"}}\nspec: {bgp: {ipv4Address: ${addr(i)}/16, routeReflectorClusterID: 10.50.255.1}}\n`);
      docs.push(`apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: to-rr}\nspec: {peerSelector: "route-reflector == 'true'"}\n`);
      docs.push(`apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false}\n`);
      writeFileSync(path.join(dir, "rr.yaml"), docs.join("---\n"));
      await sh(process.execPath, [cli, "apply", "-f", path.join(dir, "rr.yaml"), "--datastore", ds]);
    }
    opts.progress(`starting ${total} weft nodes`);
    const t0 = Date.now();
    const dead: string[] = [];
    for (let i = 0; i < total; i++) {
      const log = openSync(path.join(dir, `${name(i)}.log`), "a");
      const child = spawn("ip", ["netns", "exec", ns(i), process.execPath, cli, "node", "run", "--datastore", ds, "--name", name(i), "--ip", `${addr(i)}/16`, "--control", path.join(dir, `${name(i)}.sock`), "--log-level", "warn"], { stdio: ["ignore", log, log], detached: true });
      child.on("exit", (code) => dead.push(`${name(i)} exited with ${code}: ${readFileSync(path.join(dir, `${name(i)}.log`), "utf8").trim().split("\n").slice(-1)[0]}`));
      child.unref();
    }
    const lastStart = Date.now();
    opts.progress(`all started in ${((lastStart - t0) / 1000).toFixed(1)} s; waiting until every node has every block`);
    const until = lastStart + (opts.timeoutS ?? 600) * 1000;
    for (;;) {
      const counts = await Promise.all(
        Array.from({ length: total }, async (_, i) => {
          try {
            return (JSON.parse(await controlGet(path.join(dir, `${name(i)}.sock`), "/routes")) as { bgp: unknown[] }).bgp.length;
          } catch {
            return -1;
          }
        }),
      );
      if (dead.length) throw new Error(`a node died: ${dead[0]}`);
      const done = counts.filter((c) => c >= total - 1).length;
      if (done === total) break;
      if (Date.now() > until) throw new Error(`not converged after ${opts.timeoutS ?? 600} s: ${done}/${total} nodes have every block`);
      opts.progress(`${done}/${total} nodes have all ${total - 1} remote blocks (${((Date.now() - lastStart) / 1000).toFixed(0)} s)`);
      await sleep(500);
    }
    const convergeSeconds = (Date.now() - lastStart) / 1000;
    return { nodes: n, reflectors: r, topology: r ? `${r} route reflectors, ${n} clients` : `full mesh of ${n}`, convergeSeconds, startSeconds: (lastStart - t0) / 1000, sessionsPerClient: r ? r : n - 1 };
  } finally {
    await cleanup();
  }
}
