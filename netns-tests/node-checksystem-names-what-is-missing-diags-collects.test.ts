// weft node checksystem, as a user runs it before installing: on a clean host every
// check passes and the throwaway TUN is gone again; a kernel VXLAN device on 4789 and
// another BGP speaker on 179 (or on the datastore's listenPort) are named with the way
// out; a datastore that does not answer is a warning; without root it says so; next
// to a running weft node, the ports it holds are its own. weft node diags then puts the
// node's status, routes and metrics and the host's state in one archive.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeNamespace, requireRoot, waitFor } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import { controlGet } from "../router/control/client.js";
import type { Check } from "../router/node/checksystem.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const run = promisify(execFile);
const NS = "tck-host";
const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
const dir = tempDir("tck");

/** checksystem in the namespace (as another user with asUser): exit code, text, checks by name. */
async function checksystem(asUser?: number, datastore = `sqlite:${path.join(dir, "none.db")}`): Promise<{ code: number; text: string; checks: Record<string, Check> }> {
  const prefix = asUser === undefined ? [] : ["setpriv", "--reuid", String(asUser), "--regid", String(asUser), "--clear-groups"];
  const go = async (json: boolean) =>
    run("ip", ["netns", "exec", NS, ...prefix, process.execPath, cli, "node", "checksystem", "--datastore", datastore, ...(json ? ["--json"] : [])], { encoding: "utf8" }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
  const text = await go(false);
  const json = await go(true);
  expect(json.code).toBe(text.code);
  return { code: text.code, text: text.out, checks: Object.fromEntries((JSON.parse(json.out) as Check[]).map((c) => [c.what, c])) };
}

describe("weft node checksystem", () => {
  const held: ChildProcess[] = [];
  beforeAll(async () => {
    requireRoot();
    await removeNamespace(NS);
    await run("ip", ["netns", "add", NS]);
    await run("ip", ["-n", NS, "link", "set", "lo", "up"]);
    await run("ip", ["-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    await run("ip", ["-n", NS, "addr", "add", "10.77.0.11/24", "dev", "eth0"]);
    for (const d of ["eth0", "eth0p"]) await run("ip", ["-n", NS, "link", "set", d, "up"]);
  }, 30_000);
  afterAll(async () => {
    for (const p of held) p.kill("SIGKILL");
    await removeNamespace(NS);
  });

  it("a clean host: every check OK, exit 0, and the TUN it tried is gone again", async () => {
    const r = await checksystem();
    console.log(`[tck] clean host:\n${r.text}`);
    expect(r.code).toBe(0);
    for (const what of ["running as root", "native addon", "TUN device", "UDP GSO and GRO", "raw IPIP socket", "UDP 4789 (VXLAN)", "TCP 179 (BGP)", "datastore", "ip command", "nft command", "iptables command", "IPv4 forwarding", "reverse-path filtering", "NetworkManager", "systemd-networkd"]) {
      expect(r.checks[what], what).toMatchObject({ result: "OK" });
    }
    expect(r.checks.datastore.detail).toBe(`sqlite:${path.join(dir, "none.db")}: not made yet (weft node run makes it); BGP on TCP 179`);
    expect(r.text).toMatch(/System meets the requirements to run a weft node\.\n$/);
    expect((await run("ip", ["-n", NS, "-br", "link", "show"], { encoding: "utf8" })).stdout).not.toMatch(/weftchk/);
  }, 30_000);

  it("a kernel VXLAN device on 4789 and another BGP speaker on 179: both named, with the way out; exit 1", async () => {
    await run("ip", ["-n", NS, "link", "add", "vxlan.calico", "type", "vxlan", "id", "4096", "dstport", "4789", "local", "10.77.0.11"]);
    await run("ip", ["-n", NS, "link", "set", "vxlan.calico", "up"]);
    const bgp = spawn("ip", ["netns", "exec", NS, process.execPath, "-e", "require('net').createServer().listen(179, () => console.log('listening')); setTimeout(() => {}, 60000)"], { stdio: ["ignore", "pipe", "ignore"] });
    held.push(bgp);
    await new Promise((r) => bgp.stdout!.once("data", r));
    try {
      const r = await checksystem();
      console.log(`[tck] ports taken:\n${r.text}`);
      expect(r.code).toBe(1);
      expect(r.checks["UDP 4789 (VXLAN)"]).toMatchObject({ result: "FAIL", detail: expect.stringMatching(/^taken by the kernel's VXLAN device vxlan\.calico: weft's VXLAN cannot receive/) });
      expect(r.checks["TCP 179 (BGP)"]).toMatchObject({ result: "FAIL", detail: expect.stringMatching(/^taken by node \(pid \d+\): weft's BGP cannot listen; stop that daemon, set BGPConfiguration listenPort, or run with --backend vxlan/) });
      expect(r.text).toMatch(/2 checks failed: weft node run will not work here until fixed\.\n$/);
    } finally {
      bgp.kill("SIGKILL");
      await run("ip", ["-n", NS, "link", "del", "vxlan.calico"]);
    }
  }, 30_000);

  it("BGP on the port the datastore's BGPConfiguration sets: a speaker there is named; a datastore that does not answer is a warning, not a failure", async () => {
    const ds = `sqlite:${path.join(dir, "bgp1790.db")}`;
    const file = path.join(dir, "bgp1790.yaml");
    writeFileSync(file, "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 1790}\n");
    await run(process.execPath, [cli, "apply", "-f", file, "--datastore", ds]);
    const bgp = spawn("ip", ["netns", "exec", NS, process.execPath, "-e", "require('net').createServer().listen(1790, () => console.log('listening')); setTimeout(() => {}, 60000)"], { stdio: ["ignore", "pipe", "ignore"] });
    held.push(bgp);
    await new Promise((r) => bgp.stdout!.once("data", r));
    try {
      const r = await checksystem(undefined, ds);
      console.log(`[tck] listenPort 1790 taken:\n${r.text}`);
      expect(r.code).toBe(1);
      expect(r.checks.datastore).toEqual({ what: "datastore", result: "OK", detail: `${ds} answered; BGP on TCP 1790 (BGPConfiguration listenPort)` });
      expect(r.checks["TCP 1790 (BGP)"]).toMatchObject({ result: "FAIL", detail: expect.stringMatching(/^taken by node \(pid \d+\)/) });
      expect(r.checks["TCP 179 (BGP)"]).toBeUndefined();
    } finally {
      bgp.kill("SIGKILL");
    }
    const away = await checksystem(undefined, "etcd://127.0.0.1:1");
    console.log(`[tck] etcd not answering:\n${away.text}`);
    expect(away.code).toBe(0);
    expect(away.checks.datastore).toMatchObject({ result: "WARN", detail: expect.stringMatching(/^etcd:\/\/127\.0\.0\.1:1: .*ECONNREFUSED.* \(a node waits for it; static nodes need none\); BGP checked on TCP 179$/) });
    expect(away.checks["TCP 179 (BGP)"]).toMatchObject({ result: "OK" });
  }, 30_000);

  it("not root: it says what needs root, exit 1", async () => {
    const r = await checksystem(65534);
    console.log(`[tck] as nobody:\n${r.text}`);
    expect(r.code).toBe(1);
    expect(r.checks["running as root"]).toMatchObject({ result: "FAIL" });
    expect(r.checks["TUN device"]).toMatchObject({ result: "FAIL", detail: expect.stringContaining("(needs root, or CAP_NET_ADMIN and CAP_NET_RAW)") });
    expect(r.checks["raw IPIP socket"]).toMatchObject({ result: "FAIL", detail: expect.stringContaining("needs root") });
  }, 30_000);

  it("next to a running weft node: the ports it holds are its own, exit 0; diags collects the node's status, routes and metrics with the host's state", async () => {
    const sock = path.join(dir, "n.sock");
    const node = spawn("ip", ["netns", "exec", NS, process.execPath, cli, "node", "run", "--datastore", `sqlite:${path.join(dir, "n.db")}`, "--control", sock], { stdio: "ignore", env: { ...process.env, NODENAME: "tck-a", IP: "10.77.0.11/24" } });
    held.push(node);
    const exited = new Promise((r) => node.once("exit", r));
    try {
      await waitFor("the node's control socket", async () => (await controlGet(sock, "/status").catch(() => "")) !== "");
      const r = await checksystem();
      console.log(`[tck] beside a running node:\n${r.text}`);
      expect(r.code).toBe(0);
      expect(r.checks["weft node"]).toMatchObject({ result: "OK", detail: expect.stringMatching(/^running here \(pid \d+\), holding weft0$/) });
      expect(r.checks["UDP 4789 (VXLAN)"]).toMatchObject({ result: "OK", detail: expect.stringMatching(/^held by the weft node running here/) });
      expect(r.checks["TCP 179 (BGP)"]).toMatchObject({ result: "OK", detail: expect.stringMatching(/^held by the weft node running here/) });

      // Diags from the same host, while the node runs.
      const out = mkdtempSync(path.join(tmpdir(), "weft-tck-diags-"));
      const said = (await run("ip", ["netns", "exec", NS, process.execPath, cli, "node", "diags", "--output", out, "--control", sock], { encoding: "utf8" })).stdout;
      const archive = /^Diags saved to (\S+\.tar\.gz) \((\d+) files\)$/m.exec(said);
      console.log(`[tck] ${said.trim()}`);
      expect(archive).not.toBeNull();
      const listed = (await run("tar", ["-tzf", archive![1]], { encoding: "utf8" })).stdout.split("\n").filter((l) => l && !l.endsWith("/")).map((l) => l.split("/")[1]).sort();
      expect(listed).toEqual(["about.txt", "bridge-fdb.txt", "checksystem.json", "ip-addr.txt", "ip-link.txt", "ip-neigh.txt", "ip-route.txt", "ip-rule.txt", "iptables-save.txt", "nft-ruleset.txt", "node-bgp.json", "node-metrics.txt", "node-routes.json", "node-status.json", "ss.txt", "sysctl.txt"]);
      const read = async (file: string) => (await run("tar", ["-xzOf", archive![1], "--wildcards", `*/${file}`], { encoding: "utf8" })).stdout;
      expect(JSON.parse(await read("node-status.json"))).toMatchObject({ name: "tck-a", address: "10.77.0.11/24" });
      expect(await read("ip-route.txt")).toMatch(/blackhole \S+ proto 87/);
      const metrics = await read("node-metrics.txt");
      expect(metrics).toMatch(/^weft_routes\{type="blackhole"\} 1$/m);
      // One block of the default pool, its first address the node's tunnel address.
      expect(metrics).toMatch(/^weft_ipam_blocks\{pool="default-ipv4-ippool"\} 1$/m);
      expect(metrics).toMatch(/^weft_ipam_addresses\{pool="default-ipv4-ippool",state="in_use"\} 1$/m);
      expect(metrics).toMatch(/^weft_ipam_addresses\{pool="default-ipv4-ippool",state="free"\} 63$/m);
      rmSync(out, { recursive: true, force: true });
    } finally {
      node.kill("SIGTERM");
      await exited;
    }
  }, 60_000);
});
