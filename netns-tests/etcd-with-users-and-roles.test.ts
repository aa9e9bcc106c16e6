// The lab on an etcd with authentication on, as Calico's etcd RBAC guide sets one up (a
// root user, a role for weft's prefix, a user with it, given to the clients before
// authentication is turned on): nodes with ETCD_USERNAME and ETCD_PASSWORD run before
// and after it is; without a user, with a wrong password or with a role that does not
// cover /weft/, weft commands, weft-cni and the nodes say what to set; the nodes compact
// and follow changes after their tokens expire (5 s here); and when etcd restarts, which
// forgets every token, they sign in again and follow changes (before, every node's
// datastore client then waited for good: a call signing in again waited on itself).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";
import { poolManifest } from "../router/lab/lab.js";
import { projectRoot } from "../router/native/index.js";

const HOSTS = ["master", "worker-1", "worker-2", "worker-3"];
const USER = { ETCD_USERNAME: "weft", ETCD_PASSWORD: "weft-secret" };

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("weft on an etcd with users and roles", () => {
  const lab = useLab("tauth", "ipip", { datastore: "etcd" });
  afterAll(() => {
    for (const k of [...Object.keys(USER), "COMPACTION_PERIOD"]) delete process.env[k];
  });
  const marks = new Map<string, number>();
  const full = (host: string) => readFileSync(path.join(lab.dir, `${host}.log`), "utf8");
  const mark = () => HOSTS.forEach((h) => marks.set(h, full(h).length));
  const log = (host: string) => full(host).slice(marks.get(host) ?? 0);
  const etcdctl = (args: string[]) => lab.exec("gw", ["etcdctl", "--endpoints", "http://10.30.0.1:2379", ...args]);
  // A command in the gateway namespace, with only the environment given (plus PATH).
  const run = (args: string[], env: Record<string, string> = {}, stdin = ""): Promise<Ran> =>
    new Promise((resolve) => {
      const child = spawn("ip", ["netns", "exec", lab.gw, ...args], { env: { PATH: process.env.PATH ?? "", ...env } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(stdin);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  const weft = async (args: string[], env: Record<string, string> = {}) => {
    const r = await run([process.execPath, lab.cli(), ...args, "--datastore", lab.datastoreURL], env);
    console.log(`[tauth] weft ${args.join(" ")} as ${env.ETCD_USERNAME ?? "nobody"}: exit ${r.code} ${r.stderr.trim()}`);
    return r;
  };
  const cniDel = async (conf: Record<string, unknown>) => {
    const plugin = path.join(projectRoot(), "dist", "router", "cni", "main.js");
    const env = { CNI_COMMAND: "DEL", CNI_CONTAINERID: "tauth-gone", CNI_NETNS: "/run/netns/tauth-gone", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" };
    const r = await run([process.execPath, plugin], env, JSON.stringify({ cniVersion: "1.0.0", name: "k8s-pod-network", type: "weft-cni", datastore: lab.datastoreURL, nodename: "worker-1", ...conf }));
    console.log(`[tauth] weft-cni DEL with ${JSON.stringify(conf)}: exit ${r.code} ${r.stdout.trim()}`);
    return r;
  };
  // Down a few seconds, as a restart of a real member is: the nodes' calls fail meanwhile.
  const restartEtcd = async (downMs = 0) => {
    await lab.etcdServer!.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await lab.etcdServer!.start();
  };
  let authOnAt = 0;
  const revision = async () => Number((JSON.parse(await etcdctl(["--user", "root:root-secret", "get", "/weft/", "--prefix", "--keys-only", "-w", "json"])) as { header: { revision: number } }).header.revision);
  const routesOn = (host: string) => lab.exec(host, ["ip", "route", "show", "proto", "87"]);

  it("users and a role made, authentication still off: nodes restarted with ETCD_USERNAME and ETCD_PASSWORD run, as Calico's client does (its RBAC guide gives clients their users before it turns authentication on)", async () => {
    await etcdctl(["user", "add", "root", "--new-user-password", "root-secret"]);
    await etcdctl(["user", "grant-role", "root", "root"]);
    await etcdctl(["role", "add", "weft"]);
    await etcdctl(["role", "grant-permission", "weft", "--prefix=true", "readwrite", "/weft/"]);
    await etcdctl(["user", "add", "weft", "--new-user-password", USER.ETCD_PASSWORD]);
    await etcdctl(["user", "grant-role", "weft", "weft"]);
    await etcdctl(["user", "add", "other", "--new-user-password", "other-secret"]);
    Object.assign(process.env, USER, { COMPACTION_PERIOD: "3s" });
    for (const h of ["master", "worker-1", "worker-2"]) await lab.restartNode(h);
    const m = await lab.reachability();
    expect(Object.values(m).flatMap((r) => Object.values(r)).every(Boolean)).toBe(true);
    expect((await weft(["get", "nodes"], USER)).stdout).toMatch(/worker-1/);
  });

  it("authentication turned on (etcd restarted, its tokens 5 s): the nodes with a user sign in and resume; worker-3, started without one, says what to set; pods still reach each other", async () => {
    mark();
    await etcdctl(["auth", "enable"]);
    // Tokens that expire in 5 s (etcd's default is 300 s), so that the cases below meet expiry.
    lab.etcdServer!.opts.args = ["--auth-token-ttl", "5"];
    await restartEtcd();
    await waitFor("the nodes with a user to resume watching", () => ["master", "worker-1", "worker-2"].every((h) => /datastore reachable again; resumed watching/.test(log(h))), 30_000);
    await waitFor("worker-3 to say what to set", async () => /refuses weft \(etcd has authentication on: give weft an etcd user \(ETCD_USERNAME and ETCD_PASSWORD\)/.test(await lab.exec("worker-3", [process.execPath, lab.cli(), "node", "status", "--control", lab.controlSocket("worker-3")])), 30_000);
    expect(log("worker-3")).toMatch(/"err":"etcd has authentication on: give weft an etcd user[^"]*","msg":"the datastore refuses this node; it keeps asking/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
    authOnAt = await revision();
  });

  it("weft commands and weft-cni without a user, with a wrong password, or as a user whose role does not cover /weft/: each says what to fix", async () => {
    const none = await weft(["get", "nodes"]);
    expect(none.stderr).toContain("datastore etcd://10.30.0.1:2379: etcd has authentication on: give weft an etcd user (ETCD_USERNAME and ETCD_PASSWORD), or a client certificate whose common name is one");
    expect(none.code).toBe(1);
    const wrong = await weft(["get", "nodes"], { ETCD_USERNAME: "weft", ETCD_PASSWORD: "not-it" });
    expect(wrong.stderr).toContain("etcd refused the user name or password (ETCD_USERNAME, ETCD_PASSWORD)");
    const other = await weft(["get", "nodes"], { ETCD_USERNAME: "other", ETCD_PASSWORD: "other-secret" });
    expect(other.stderr).toContain("etcd's user for weft may not read or write weft's records: grant its role readwrite on the prefix /weft/ (etcdctl role grant-permission ROLE --prefix=true readwrite /weft/)");
    const half = await weft(["get", "nodes"], { ETCD_USERNAME: "weft" });
    expect(half.stderr).toContain("ETCD_USERNAME and ETCD_PASSWORD go together");
    expect(half.code).toBe(2);
    // weft-cni: configuration, so not "try again" (code 11) but code 7, naming the fix.
    expect(JSON.parse((await cniDel({})).stdout)).toMatchObject({ code: 7, msg: "Invalid Configuration", details: expect.stringContaining("etcd has authentication on") });
    expect((await cniDel({ etcd_username: "weft", etcd_password: USER.ETCD_PASSWORD })).code).toBe(0);
    const ok = await weft(["get", "nodes"], USER);
    expect(ok.stdout).toMatch(/worker-1/);
  });

  it("worker-3 restarted with the user: every pod reaches every other, and the nodes compact etcd's history as that user", async () => {
    mark();
    await lab.restartNode("worker-3");
    const m = await lab.reachability();
    expect(Object.values(m).flatMap((r) => Object.values(r)).every(Boolean)).toBe(true);
    // A write after authentication went on; then the nodes' compaction (every 3 s here) passes it.
    expect((await weft(["ipam", "assign", "--node", "worker-3", "--handle", "tauth-compact"], USER)).code).toBe(0);
    // etcd's history up to a revision after authentication went on is compacted: by a node, as weft's user.
    await waitFor("the nodes to compact past the revision authentication went on at", () => etcdctl(["--user", "root:root-secret", "get", "/weft/", "--prefix", "--keys-only", "--rev", String(authOnAt)]).then(() => false, (e: Error) => /required revision has been compacted/.test(e.message)), 20_000);
    expect(log("worker-3")).not.toMatch(/datastore unreachable|refuses this node/);
  });

  it("after their tokens expired, a pool change reaches every node", async () => {
    await new Promise((r) => setTimeout(r, 7000));
    const t0 = Date.now();
    await lab.apply(poolManifest("direct"));
    await waitFor("every node to route directly", async () => {
      for (const h of HOSTS) if ((await routesOn(h)).split("\n").filter((l) => / dev eth0/.test(l)).length !== 3) return false;
      return true;
    }, 15_000);
    console.log(`[tauth] the pool change reached every node ${Date.now() - t0} ms after it was applied, their tokens expired`);
  });

  it("etcd restarted (it forgets every token): the nodes sign in again, resume watching, and follow the next change", async () => {
    mark();
    await restartEtcd(4000);
    const t0 = Date.now();
    await waitFor("every node to resume watching", () => HOSTS.every((h) => /datastore reachable again; resumed watching/.test(log(h))), 30_000);
    console.log(`[tauth] every node resumed watching ${Date.now() - t0} ms after etcd was back`);
    await lab.apply(poolManifest("ipip"));
    await waitFor("every node to route over IPIP again", async () => {
      for (const h of HOSTS) if ((await routesOn(h)).split("\n").filter((l) => / dev weft0/.test(l)).length !== 3) return false;
      return true;
    }, 15_000);
    expect((await lab.nodeStatus("worker-1")).datastore).toMatchObject({ reachable: true });
  });
});
