// A host with several interfaces (a docker bridge, a management NIC holding the default
// route and a 192.168 address, the cluster NIC) runs a node configured the way
// calico-node is, through its environment: IP and IP_AUTODETECTION_METHOD pick the
// registered address (with the interface's prefix), CALICO_NETWORKING_BACKEND the
// backend, AS the Node's AS number, CALICO_IPV4POOL_* the pool created on first start.
// A value that cannot work stops the node before it touches the host, saying why.
import { execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeNamespace, requireRoot, waitFor, weftRoutesIn } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import { controlGet } from "../router/control/client.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const run = promisify(execFile);
const NS = "tad-host";
const dir = tempDir("tad");
const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
let runs = 0;

interface Started {
  address: string;
  /** How the node found it (status JSON's addressFrom). */
  addressFrom: string;
  uplink: string;
  backend: string;
  tunnelMTU: number;
  /** The datastore's IPPools and this node's Node after the start. */
  pools: Array<{ metadata: { name: string }; spec: Record<string, unknown> }>;
  node: { spec: { bgp: { asNumber?: number }; ipv4VXLANTunnelAddr?: string } };
}

/** GET from inside the namespace: "STATUS BODY", or the error's code. */
async function httpIn(ns: string, url: string): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => console.log(r.status + " " + (await r.text())), (e) => console.log(e.cause?.code ?? e.message))`;
  return (await run("ip", ["netns", "exec", ns, process.execPath, "-e", script], { encoding: "utf8" })).stdout.trim();
}

async function weftGet(db: string, kind: string, name = ""): Promise<unknown> {
  const args = [cli, "get", kind, ...(name ? [name] : []), "-o", "json", "--datastore", `sqlite:${db}`];
  return JSON.parse((await run(process.execPath, args, { encoding: "utf8" })).stdout);
}

/** Starts a node with these environment variables, reads its status and resources (and runs during() meanwhile), stops it. */
async function nodeWith(env: Record<string, string>, during: () => Promise<void> = async () => {}): Promise<Started> {
  const n = ++runs;
  const db = path.join(dir, `n${n}.db`);
  const sock = path.join(dir, `n${n}.sock`);
  const child = spawn("ip", ["netns", "exec", NS, process.execPath, cli, "node", "run", "--datastore", `sqlite:${db}`, "--control", sock], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODENAME: "host-a", ...env },
  });
  // The node's log, shown when something here takes too long.
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise((r) => child.once("exit", r));
  const t0 = Date.now();
  const tail = () => log.trim().split("\n").slice(-15).join("\n");
  try {
    let status = "";
    await waitFor("the node's control socket", async () => {
      status = await controlGet(sock, "/status").catch(() => "");
      return status !== "";
    }).catch((err: Error) => {
      throw new Error(`${err.message}; the node's log:\n${tail()}`);
    });
    const s = JSON.parse(status) as { address: string; addressFrom: string; backend: string; uplink: { device: string }; tunnel: { mtu: number } };
    await during();
    const pools = ((await weftGet(db, "ippool")) as { items: Started["pools"] }).items;
    return { address: s.address, addressFrom: s.addressFrom, uplink: s.uplink.device, backend: s.backend, tunnelMTU: s.tunnel.mtu, pools, node: (await weftGet(db, "node", "host-a")) as Started["node"] };
  } finally {
    const stopAt = Date.now();
    child.kill("SIGTERM");
    // The node gives itself 10 s to stop; past 12 s something hangs: say where it was.
    const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 12_000))]);
    if (!done) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(`the node did not exit within 12 s of SIGTERM (started ${stopAt - t0} ms before); its log:\n${tail()}`);
    }
  }
}

/** Runs a node that is expected to refuse to start: its exit code and stderr. */
async function refused(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  try {
    // 60 s: once in a fresh-clone run this took over 20 s with no output, while other
    // test files tore their labs down (the refusal itself takes ~0.5 s).
    await run("ip", ["netns", "exec", NS, "timeout", "60", process.execPath, cli, "node", "run", "--datastore", `sqlite:${dir}/refused.db`, "--control", path.join(dir, "refused.sock")], {
      encoding: "utf8",
      env: { ...process.env, NODENAME: "host-a", ...env },
    });
    return { code: 0, stderr: "" };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

describe("node address autodetection on a multi-homed host", () => {
  beforeAll(async () => {
    requireRoot();
    await removeNamespace(NS);
    const ip = (...args: string[]) => run("ip", ["-n", NS, ...args]);
    await run("ip", ["netns", "add", NS]);
    await ip("link", "set", "lo", "up");
    // In index order: the bridge first, so first-found must skip it by name.
    await ip("link", "add", "docker0", "type", "bridge");
    await ip("addr", "add", "172.17.0.1/16", "dev", "docker0");
    await ip("link", "set", "docker0", "up");
    for (const [dev, peer, addr] of [["mgmt0", "mgmt1", "10.99.0.2/24"], ["eth1", "eth1p", "10.30.0.11/24"]]) {
      await ip("link", "add", dev, "type", "veth", "peer", "name", peer);
      await ip("addr", "add", addr, "dev", dev);
      await ip("link", "set", dev, "up");
      await ip("link", "set", peer, "up");
    }
    await ip("addr", "add", "192.168.1.2/24", "dev", "mgmt0");
    await ip("route", "add", "default", "via", "10.99.0.1", "dev", "mgmt0");
    await ip("route", "add", "10.40.0.0/16", "via", "10.30.0.1", "dev", "eth1");
  }, 30_000);
  afterAll(async () => {
    await removeNamespace(NS);
  });

  it.each([
    ["no method: the default route's interface", {}, "10.99.0.2/24", "mgmt0"],
    ["IP_AUTODETECTION_METHOD=first-found: skips docker0", { IP_AUTODETECTION_METHOD: "first-found" }, "10.99.0.2/24", "mgmt0"],
    ["IP_AUTODETECTION_METHOD=can-reach=10.40.0.1", { IP: "autodetect", IP_AUTODETECTION_METHOD: "can-reach=10.40.0.1" }, "10.30.0.11/24", "eth1"],
    ["IP_AUTODETECTION_METHOD=interface=eth.*", { IP_AUTODETECTION_METHOD: "interface=eth.*" }, "10.30.0.11/24", "eth1"],
    ["IP_AUTODETECTION_METHOD=skip-interface=mgmt.*", { IP_AUTODETECTION_METHOD: "skip-interface=mgmt.*" }, "10.30.0.11/24", "eth1"],
    ["IP_AUTODETECTION_METHOD=cidr=10.30.0.0/16", { IP_AUTODETECTION_METHOD: "cidr=10.30.0.0/16" }, "10.30.0.11/24", "eth1"],
    ["IP=10.30.0.11 (bare): the prefix comes from eth1", { IP: "10.30.0.11" }, "10.30.0.11/24", "eth1"],
    ["IP_AUTODETECTION_METHOD=can-reach=10.77.0.1: by the default route", { IP_AUTODETECTION_METHOD: "can-reach=10.77.0.1" }, "10.99.0.2/24", "mgmt0"],
  ])("%s", async (what, env, address, uplink) => {
    const got = await nodeWith(env);
    // weft node status --json says how the address was found.
    if (what.startsWith("IP_AUTODETECTION_METHOD=")) expect(got.addressFrom).toBe(what.split(":")[0].slice("IP_AUTODETECTION_METHOD=".length));
    console.log(`[tad] ${JSON.stringify(env)} -> ${got.address} on ${got.uplink} (${got.addressFrom})`);
    expect(got).toMatchObject({ address, uplink });
  }, 40_000);

  it("CALICO_NETWORKING_BACKEND picks the backend as calico-node's does (bird is BGP)", async () => {
    expect((await nodeWith({ CALICO_NETWORKING_BACKEND: "bird" })).backend).toBe("bgp");
    expect((await nodeWith({ CALICO_NETWORKING_BACKEND: "vxlan" })).backend).toBe("vxlan");
  }, 60_000);

  it("no CALICO_IPV4POOL_*: the first pool avoids the host's 192.168.1.0/24 (and docker0's 172.17) as Calico's does", async () => {
    const got = await nodeWith({});
    console.log(`[tad] default pool: ${JSON.stringify(got.pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.ipipMode]))}`);
    expect(got.pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.ipipMode])).toEqual([["default-ipv4-ippool", "172.16.0.0/16", "Always"]]);
  }, 40_000);

  it("CALICO_IPV4POOL_* shape the first pool and AS goes into the Node", async () => {
    const got = await nodeWith({ CALICO_IPV4POOL_CIDR: "10.244.0.0/16", CALICO_IPV4POOL_BLOCK_SIZE: "24", CALICO_IPV4POOL_VXLAN: "Always", CALICO_IPV4POOL_NAT_OUTGOING: "false", AS: "64601" });
    console.log(`[tad] pool from the environment: ${JSON.stringify(got.pools[0].spec)}; Node AS ${got.node.spec.bgp.asNumber}, tunnel ${got.node.spec.ipv4VXLANTunnelAddr}`);
    expect(got.pools[0].spec).toMatchObject({ cidr: "10.244.0.0/16", blockSize: 24, ipipMode: "Never", vxlanMode: "Always", natOutgoing: false });
    expect(got.node.spec.bgp.asNumber).toBe(64601);
    expect(got.node.spec.ipv4VXLANTunnelAddr).toMatch(/^10\.244\./);
  }, 40_000);

  it("FELIX_VXLANMTU sets weft0's MTU under a VXLAN pool (1450 without it, from the uplink's 1500)", async () => {
    const vxlan = { CALICO_IPV4POOL_CIDR: "10.244.0.0/16", CALICO_IPV4POOL_VXLAN: "Always" };
    const plain = await nodeWith(vxlan);
    const set = await nodeWith({ ...vxlan, FELIX_VXLANMTU: "1400", FELIX_IPINIPMTU: "1300" });
    console.log(`[tad] weft0 MTU under VXLAN: ${plain.tunnelMTU} by default, ${set.tunnelMTU} with FELIX_VXLANMTU=1400 (FELIX_IPINIPMTU=1300 is for IPIP pools: none here)`);
    expect(plain.tunnelMTU).toBe(1450);
    expect(set.tunnelMTU).toBe(1400);
  }, 60_000);

  it("NO_DEFAULT_POOLS=true: no pool, and the node runs without a tunnel address until one is applied", async () => {
    const got = await nodeWith({ NO_DEFAULT_POOLS: "true" });
    expect(got.pools).toEqual([]);
    expect(got.node.spec.ipv4VXLANTunnelAddr).toBeUndefined();
  }, 40_000);

  it("FELIX_PROMETHEUSMETRICSENABLED and FELIX_HEALTHENABLED: metrics on every address at 9091, /liveness and /readiness on localhost:9099", async () => {
    const seen: Record<string, string> = {};
    await nodeWith({ FELIX_PROMETHEUSMETRICSENABLED: "true", FELIX_HEALTHENABLED: "true" }, async () => {
      for (const url of ["http://10.30.0.11:9091/metrics", "http://127.0.0.1:9099/liveness", "http://127.0.0.1:9099/readiness", "http://10.30.0.11:9099/readiness"]) seen[url] = await httpIn(NS, url);
    });
    console.log(`[tad] over HTTP: ${Object.entries(seen).map(([u, r]) => `${u} -> ${r.split("\n")[0]}`).join("; ")}`);
    expect(seen["http://10.30.0.11:9091/metrics"]).toMatch(/^200 /);
    expect(seen["http://10.30.0.11:9091/metrics"]).toMatch(/^weft_datastore_reachable\{datastore="sqlite:.*"\} 1$/m);
    expect(seen["http://10.30.0.11:9091/metrics"]).toMatch(/^process_cpu_seconds_total \d/m);
    expect(seen["http://127.0.0.1:9099/liveness"]).toBe('200 {"live":true}');
    // No peers in this one-node cluster: ready, as Calico's rule says.
    expect(seen["http://127.0.0.1:9099/readiness"]).toBe('200 {"ready":true,"reason":"no BGP peers"}');
    // Health listens on localhost only (Felix's default host).
    expect(seen["http://10.30.0.11:9099/readiness"]).toMatch(/ECONNREFUSED/);
  }, 40_000);

  it("an error nothing expected: one fatal log line, exit 1 for the service to restart it, weft0 and the routes kept", async () => {
    // A preload that throws from a timer once the node runs (its control socket is there), as a bug would.
    const db = path.join(dir, "fatal.db");
    const sock = path.join(dir, "fatal.sock");
    const boom = path.join(dir, "boom.mjs");
    writeFileSync(boom, `import { existsSync } from "node:fs";\nconst t = setInterval(() => { if (existsSync(${JSON.stringify(sock)})) { clearInterval(t); setTimeout(() => { throw new Error("boom: a bug nobody expected"); }, 300); } }, 100);\n`);
    const child = spawn("ip", ["netns", "exec", NS, process.execPath, "--import", boom, cli, "node", "run", "--datastore", `sqlite:${db}`, "--control", sock], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODENAME: "host-a", IP: "10.30.0.11/24" },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
    const fatal = lines.filter((l) => l.level === 60);
    console.log(`[tad] a thrown error: exit ${code}; fatal lines: ${JSON.stringify(fatal.map((l) => [l.msg, l.err?.message]))}`);
    expect(code).toBe(1);
    expect(lines.some((l) => l.msg === "node running")).toBe(true);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ msg: expect.stringContaining("unexpected error: the node stops; weft0 and its routes stay"), err: { message: "boom: a bug nobody expected" } });
    expect(await weftRoutesIn(NS)).toMatch(/blackhole/);
    await run("ip", ["-n", NS, "link", "show", "weft0"]);
  }, 60_000);

  it("a metrics port another process holds: refused before the node touches the host", async () => {
    await run("ip", ["-n", NS, "link", "del", "weft0"]).catch(() => {});
    const holder = spawn("ip", ["netns", "exec", NS, process.execPath, "-e", "require('net').createServer().listen(9091, () => console.log('listening'))"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      await new Promise((r) => holder.stdout.once("data", r));
      const before = await weftRoutesIn(NS);
      const r = await refused({ FELIX_PROMETHEUSMETRICSENABLED: "true" });
      console.log(`[tad] metrics port taken: exit ${r.code}: ${r.stderr.trim()}`);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/FELIX_PROMETHEUSMETRICSENABLED=true with FELIX_PROMETHEUSMETRICSHOST and FELIX_PROMETHEUSMETRICSPORT: cannot listen on 0\.0\.0\.0:9091: another process listens on that port \(EADDRINUSE\)/);
      expect(await weftRoutesIn(NS)).toEqual(before);
      expect((await run("ip", ["-n", NS, "link", "show", "weft0"]).catch((e: { stderr: string }) => e)).stderr).toMatch(/does not exist/);
    } finally {
      holder.kill();
    }
  }, 90_000);

  it.each([
    [{ FELIX_PROMETHEUSMETRICSENABLED: "true", FELIX_PROMETHEUSMETRICSPORT: "99999" }, /FELIX_PROMETHEUSMETRICSPORT: the port must be a whole number from 1 to 65535, not "99999"/],
    [{ CALICO_IPV4POOL_CIDR: "10.244.0.0/33" }, /CALICO_IPV4POOL_CIDR: "10.244.0.0\/33" is not an IPv4 CIDR/],
    [{ CALICO_IPV4POOL_IPIP: "Always", CALICO_IPV4POOL_VXLAN: "Always" }, /CALICO_IPV4POOL_IPIP and CALICO_IPV4POOL_VXLAN: ipipMode and vxlanMode cannot both be enabled/],
    [{ AS: "sixty" }, /--as \(or AS\) must be a whole number from 1 to 4294967295, not "sixty"/],
    [{ FELIX_VXLANMTU: "100" }, /--vxlan-mtu \(or FELIX_VXLANMTU\) must be a whole number from 576 to 65535, not "100"/],
    [{ IP_AUTODETECTION_METHOD: "interface=wlan.*" }, /IP_AUTODETECTION_METHOD interface=wlan\.\*: no interface with an IPv4 address matches \(those are lo, docker0, mgmt0, eth1\)/],
    [{ IP_AUTODETECTION_METHOD: "cidr=10.50.0.0/16" }, /cidr=10.50.0.0\/16: no interface has an address in it/],
    [{ IP_AUTODETECTION_METHOD: "kubernetes-internal-ip" }, /kubernetes-internal-ip reads the Kubernetes Node object, which weft does not/],
    [{ IP: "10.30.0.12" }, /IP: 10.30.0.12 is on no interface of this host/],
  ])("%j: refused before the node touches the host", async (env, message) => {
    // The nodes before left their routes (kept for a restart) and maybe weft0: no weft0 now.
    await run("ip", ["-n", NS, "link", "del", "weft0"]).catch(() => {});
    const host = async () => [await weftRoutesIn(NS), (await run("ip", ["-n", NS, "-br", "link", "show"], { encoding: "utf8" })).stdout.split("\n").map((l) => l.split(/\s+/)[0]).sort()];
    const before = await host();
    const t0 = Date.now();
    const r = await refused(env);
    console.log(`[tad] ${JSON.stringify(env)}: exit ${r.code} after ${Date.now() - t0} ms: ${r.stderr.trim()}`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await host()).toEqual(before);
  }, 90_000);
});
