// weft-cni driven the way the CNI spec says a runtime drives it (environment + config
// on stdin), on worker-1 of a lab: ADD -> CHECK -> DEL -> DEL, VERSION with dummy
// values, every error path, concurrency, and nothing left behind after a failure.
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import type { Lab } from "../router/lab/lab.js";

const plugin = () => path.join(projectRoot(), "dist", "router", "cni", "main.js");

interface Call {
  command: string;
  containerID?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  config?: unknown;
  env?: Record<string, string>;
}

function cniEnv(c: Call): Record<string, string> {
  const e: Record<string, string> = { PATH: process.env.PATH ?? "", ...c.env };
  if (c.command) e.CNI_COMMAND = c.command;
  if (c.containerID) e.CNI_CONTAINERID = c.containerID;
  if (c.netns) e.CNI_NETNS = c.netns;
  if (c.ifname) e.CNI_IFNAME = c.ifname;
  if (c.args) e.CNI_ARGS = c.args;
  e.CNI_PATH = "/opt/cni/bin";
  return e;
}

function cni(lab: Lab, host: string, c: Call): { code: number; out: any } {
  const input = typeof c.config === "string" ? c.config : JSON.stringify(c.config ?? {});
  const r = spawnSync("ip", ["netns", "exec", lab.ns(host), process.execPath, plugin()], { input, env: cniEnv(c), encoding: "utf8", timeout: 60_000 });
  let out: any = r.stdout;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    /* not JSON: the test says so */
  }
  return { code: r.status ?? -1, out };
}

function cniAsync(lab: Lab, host: string, c: Call): Promise<{ code: number; out: any }> {
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", lab.ns(host), process.execPath, plugin()], { env: cniEnv(c) });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("close", (code) => resolve({ code: code ?? -1, out: out ? JSON.parse(out) : undefined }));
    p.stdin.end(JSON.stringify(c.config));
  });
}

/** The ADD result's shape, as the CNI 1.0.0 spec defines it. */
function expectValidResult(r: any, netns: string): void {
  expect(r.cniVersion).toBe("1.0.0");
  expect(r.interfaces).toHaveLength(2);
  expect(r.interfaces[0]).toEqual({ name: expect.stringMatching(/^cali[0-9a-f]{11}$/), mac: "ee:ee:ee:ee:ee:ee" });
  expect(r.interfaces[1]).toEqual({ name: "eth0", mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), sandbox: netns });
  expect(r.ips).toEqual([{ address: expect.stringMatching(/^192\.168\.\d+\.\d+\/32$/), gateway: "169.254.1.1", interface: 1 }]);
  expect(r.routes).toEqual([{ dst: "0.0.0.0/0", gw: "169.254.1.1" }]);
  expect(r.dns).toEqual({});
}

describe("weft-cni conformance (CNI spec 1.0.0)", () => {
  const lab = useLab("tcni", "ipip", { datastore: "sqlite" });
  const conf = () => ({ cniVersion: "1.0.0", name: "weft", type: "weft-cni", datastore: lab.datastoreURL, nodename: "worker-1" });
  const newNetns = async (name: string) => {
    await lab.exec("worker-1", ["true"]);
    spawnSync("ip", ["netns", "add", lab.ns(name)]);
    return `/run/netns/${lab.ns(name)}`;
  };
  const handles = async () => (await lab.weft(["ipam", "show", "--show-blocks"])).split("\n").length;
  const caliCount = async (host: string) => (await lab.exec(host, ["ip", "-o", "link", "show"])).split("\n").filter((l) => / cali[0-9a-f]{11}@/.test(l)).length;

  it("VERSION answers with dummy values for everything else", () => {
    const r = cni(lab, "worker-1", { command: "VERSION", containerID: "dummy", netns: "dummy", ifname: "dummy", args: "dummy", config: { cniVersion: "1.0.0" } });
    expect(r.code).toBe(0);
    expect(r.out).toEqual({ cniVersion: "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });

  it("a conflist that says cniVersion 0.3.1 (as Calico's does): ADD answers in 0.3.1's shape, DEL cleans up", async () => {
    const call = { containerID: "old-conflist", netns: await newNetns("v031"), ifname: "eth0", config: { ...conf(), cniVersion: "0.3.1" } };
    const add = cni(lab, "worker-1", { command: "ADD", ...call });
    expect(add.code).toBe(0);
    expect(add.out.cniVersion).toBe("0.3.1");
    expect(add.out.ips).toEqual([{ version: "4", address: expect.stringMatching(/^192\.168\.\d+\.\d+\/32$/), gateway: "169.254.1.1", interface: 1 }]);
    expect(cni(lab, "worker-1", { command: "DEL", ...call }).code).toBe(0);
  });

  it("ADD -> CHECK -> DEL -> DEL: a working container, then nothing left", async () => {
    const netns = await newNetns("c1");
    const call = { containerID: "c1abc", netns, ifname: "eth0", args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1", config: conf() };
    const add = cni(lab, "worker-1", { command: "ADD", ...call });
    console.log(`[tcni] ADD result: ${JSON.stringify(add.out)}`);
    expect(add.code).toBe(0);
    expectValidResult(add.out, netns);
    const address = add.out.ips[0].address.split("/")[0];
    expect(add.out.interfaces[0].name).toBe("cali" + (await import("node:crypto")).createHash("sha1").update("default.web-1").digest("hex").slice(0, 11));
    // The container reaches pod-3 on worker-3 across the gateway, and back.
    expect(spawnSync("ip", ["netns", "exec", lab.ns("c1"), "ping", "-c", "1", "-W", "2", lab.podAddress("pod-3")]).status).toBe(0);
    expect(await lab.ping("pod-3", address)).toBe(true);
    expect(cni(lab, "worker-1", { command: "CHECK", ...call }).code).toBe(0);
    const del = cni(lab, "worker-1", { command: "DEL", ...call });
    expect(del.code).toBe(0);
    expect(await lab.exec("worker-1", ["ip", "route", "show", `${address}/32`])).toBe("");
    expect(await caliCount("worker-1")).toBe(1); // pod-1's only
    expect(cni(lab, "worker-1", { command: "DEL", ...call }).code).toBe(0);
    const after = cni(lab, "worker-1", { command: "CHECK", ...call });
    expect(after.code).toBe(1);
    expect(after.out.code).toBe(102);
  });

  const errors: Array<[string, Call, number, RegExp]> = [
    ["no CNI_COMMAND", { command: "", containerID: "x", netns: "/run/netns/x", ifname: "eth0" }, 4, /CNI_COMMAND is not set/],
    ["an unknown command", { command: "FROB", containerID: "x" }, 4, /unknown CNI_COMMAND/],
    ["config that is not JSON", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: "{name: weft" }, 6, /not valid JSON/],
    ["a config without name", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "1.0.0", type: "weft-cni" } }, 7, /Invalid Configuration/],
    ["an unknown datastore", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "1.0.0", name: "weft", type: "weft-cni", datastore: "mysql://db" } }, 7, /Invalid Configuration/],
    ["a nodename a Node cannot have", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "1.0.0", name: "weft", type: "weft-cni", nodename: "Worker_1" } }, 7, /nodename: Node\(Worker_1\): metadata.name: must be lowercase/],
    ["an unsupported cniVersion", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "9.9.9", name: "weft", type: "weft-cni" } }, 1, /Incompatible CNI version/],
    ["ADD without CNI_NETNS", { command: "ADD", containerID: "x", ifname: "eth0" }, 4, /CNI_NETNS is not set/],
    ["a log_file that cannot be opened", { command: "DEL", containerID: "x", ifname: "eth0", config: { cniVersion: "1.0.0", name: "weft", type: "weft-cni", log_file: "/proc/weft/cni.log" } }, 7, /log_file \/proc\/weft\/cni\.log cannot be opened/],
    ["an ipam type weft does not run (host-local)", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "1.0.0", name: "weft", type: "weft-cni", ipam: { type: "host-local", subnet: "10.1.0.0/24" } } }, 7, /ipam.type host-local: weft-cni assigns addresses from weft's IP pools itself; set type to calico-ipam or weft-ipam/],
    ["ipam asking for IPv6", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "1.0.0", name: "weft", type: "weft-cni", ipam: { type: "calico-ipam", assign_ipv6: "true" } } }, 7, /assign_ipv6 "true" are not supported/],
    ["a CNI_CONTAINERID the spec does not allow", { command: "ADD", containerID: "bad id;x", netns: "/run/netns/x", ifname: "eth0" }, 4, /CNI_CONTAINERID "bad id;x" is not a container ID/],
    ["CNI_ARGS IP that is not an IPv4 address", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", args: "IgnoreUnknown=1;IP=fd00::5" }, 4, /CNI_ARGS IP: "fd00::5" is not an IPv4 address/],
    ["runtimeConfig ips asking for two addresses", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", config: { cniVersion: "1.0.0", name: "weft", type: "weft-cni", runtimeConfig: { ips: ["192.168.200.7/24", "192.168.200.8/24"] } } }, 7, /runtimeConfig ips asks for 2 addresses \(192\.168\.200\.7, 192\.168\.200\.8\)/],
    ["CNI_ARGS that are not KEY=VALUE pairs", { command: "ADD", containerID: "x", netns: "/run/netns/x", ifname: "eth0", args: "K8S_POD_NAME=a;garbage" }, 4, /CNI_ARGS: "garbage" is not KEY=VALUE/],
  ];
  for (const [what, call, code, msg] of errors) {
    it(`${what}: error code ${code} with a message that says what to fix`, () => {
      const r = cni(lab, "worker-1", { config: call.config ?? conf(), ...call });
      console.log(`[tcni] ${what}: ${JSON.stringify(r.out)}`);
      expect(r.code).toBe(1);
      expect(r.out.code).toBe(code);
      expect(`${r.out.msg} ${r.out.details}`).toMatch(msg);
    });
  }

  it("a container namespace that does not exist, or a path that is not one, or a bad interface name: refused before any address is taken", async () => {
    const before = await lab.weft(["ipam", "show"]);
    const bad: Array<[Omit<Call, "command">, RegExp]> = [
      [{ netns: "/run/netns/does-not-exist", ifname: "eth0" }, /CNI_NETNS \/run\/netns\/does-not-exist does not exist/],
      [{ netns: "/tmp", ifname: "eth0" }, /CNI_NETNS \/tmp is not a network namespace/],
      [{ netns: await newNetns("ifn"), ifname: "thisnameistoolong" }, /CNI_IFNAME "thisnameistoolong" is not an interface name/],
    ];
    for (const [call, msg] of bad) {
      const r = cni(lab, "worker-1", { command: "ADD", containerID: "ghost", config: conf(), ...call });
      console.log(`[tcni] ADD ${call.netns} ${call.ifname}: ${JSON.stringify(r.out)}`);
      expect(r.out.code).toBe(4);
      expect(r.out.msg).toMatch(msg);
    }
    expect(await lab.weft(["ipam", "show"])).toBe(before);
    expect(await caliCount("worker-1")).toBe(1);
  });

  it("ADD for a node that has not registered (no weft node runs there): try again (11), nothing assigned", async () => {
    const before = await lab.weft(["ipam", "show", "--show-blocks"]);
    const r = cni(lab, "worker-1", { command: "ADD", containerID: "early", netns: await newNetns("early"), ifname: "eth0", config: { ...conf(), nodename: "worker-9" } });
    console.log(`[tcni] ADD before the node registered: ${JSON.stringify(r.out)}`);
    expect(r.out.code).toBe(11);
    expect(r.out.msg).toMatch(/Node\(worker-9\) is not registered: is "weft node run" running on this host\?/);
    expect(await lab.weft(["ipam", "show", "--show-blocks"])).toBe(before);
  });

  it("ADD with a configuration copied from another host (nodename of a node elsewhere): code 7, nothing assigned", async () => {
    const before = await lab.weft(["ipam", "show", "--show-blocks"]);
    const r = cni(lab, "worker-1", { command: "ADD", containerID: "copied", netns: await newNetns("copied"), ifname: "eth0", config: { ...conf(), nodename: "worker-2" } });
    console.log(`[tcni] ADD on worker-1 saying nodename worker-2: ${JSON.stringify(r.out)}`);
    expect(r.out.code).toBe(7);
    expect(r.out.details).toMatch(/nodename worker-2: that Node's address 10\.30\.0\.12 is not on this host/);
    expect(await lab.weft(["ipam", "show", "--show-blocks"])).toBe(before);
  });

  it("without nodename, on a host whose node runs under another name than the hostname: the Node whose address is on this host", async () => {
    const { nodename: _, ...noName } = conf();
    const call = { containerID: "unnamed", netns: await newNetns("unnamed"), ifname: "eth0", config: noName };
    const add = cni(lab, "worker-1", { command: "ADD", ...call });
    console.log(`[tcni] ADD without nodename on worker-1: ${JSON.stringify(add.out.ips ?? add.out)}`);
    expect(add.code).toBe(0);
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const [net, len] = block.split("/");
    const toNum = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
    const addr = add.out.ips[0].address.split("/")[0];
    expect(Math.floor(toNum(addr) / 2 ** (32 - Number(len)))).toBe(Math.floor(toNum(net) / 2 ** (32 - Number(len))));
    expect(cni(lab, "worker-1", { command: "DEL", ...call }).code).toBe(0);
  });

  it("ADD on a host whose node is not running (no weft0 to take the MTU from): try again (11), nothing assigned", async () => {
    const before = await lab.weft(["ipam", "show", "--show-blocks"]);
    const r = cni(lab, "gw", { command: "ADD", containerID: "nomtu", netns: await newNetns("nomtu"), ifname: "eth0", config: conf() });
    console.log(`[tcni] ADD without weft0: ${JSON.stringify(r.out)}`);
    expect(r.out.code).toBe(11);
    expect(r.out.msg).toMatch(/weft0 does not exist: the weft node on this host is not running yet/);
    expect(await lab.weft(["ipam", "show", "--show-blocks"])).toBe(before);
  });

  it("ADD repeated for a wired container answers as the first did and leaves it working", async () => {
    const call = { containerID: "twice", netns: await newNetns("twice"), ifname: "eth0", config: conf() };
    const first = cni(lab, "worker-1", { command: "ADD", ...call });
    const again = cni(lab, "worker-1", { command: "ADD", ...call });
    expect(first.code).toBe(0);
    expect(again.code).toBe(0);
    expect(again.out).toEqual(first.out);
    const address = first.out.ips[0].address.split("/")[0];
    expect(await lab.ping("pod-3", address)).toBe(true);
    expect(cni(lab, "worker-1", { command: "CHECK", ...call }).code).toBe(0);
    expect(cni(lab, "worker-1", { command: "DEL", ...call }).code).toBe(0);
  });

  it("a pod's next container takes over its host interface; the earlier container's late DEL leaves the new one working", async () => {
    const args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=restarted";
    const old = { containerID: "sandbox-1", netns: await newNetns("sb1"), ifname: "eth0", args, config: conf() };
    const next = { containerID: "sandbox-2", netns: await newNetns("sb2"), ifname: "eth0", args, config: conf() };
    expect(cni(lab, "worker-1", { command: "ADD", ...old }).code).toBe(0);
    const add = cni(lab, "worker-1", { command: "ADD", ...next });
    expect(add.code).toBe(0);
    expect(cni(lab, "worker-1", { command: "DEL", ...old }).code).toBe(0);
    const address = add.out.ips[0].address.split("/")[0];
    expect(cni(lab, "worker-1", { command: "CHECK", ...next }).code).toBe(0);
    expect(await lab.ping("pod-3", address)).toBe(true);
    expect(cni(lab, "worker-1", { command: "DEL", ...next }).code).toBe(0);
    expect(await caliCount("worker-1")).toBe(1);
  });

  it("a failure injected right after IPAM assignment leaves no address allocated", async () => {
    const netns = await newNetns("c2");
    const before = await lab.weft(["ipam", "show"]);
    const r = cni(lab, "worker-1", { command: "ADD", containerID: "c2", netns, ifname: "eth0", config: conf(), env: { WEFT_CNI_FAIL_AFTER_IPAM: "1" } });
    expect(r.out.code).toBe(101);
    expect(await lab.weft(["ipam", "show"])).toBe(before);
    expect(await caliCount("worker-1")).toBe(1);
  });

  it("STATUS (1.1.0): ready while the datastore answers, code 50 when it does not", () => {
    expect(cni(lab, "worker-1", { command: "STATUS", config: { ...conf(), cniVersion: "1.1.0" } }).code).toBe(0);
    const down = cni(lab, "worker-1", { command: "STATUS", config: { ...conf(), cniVersion: "1.1.0", datastore: "etcd://127.0.0.1:1" } });
    expect(down.out.code).toBe(50);
  });

  it("20 concurrent ADDs on worker-1 and 20 across worker-1 and worker-2: unique addresses; after the DELs no veth, route or handle is left", async () => {
    const base1 = await caliCount("worker-1");
    const base2 = await caliCount("worker-2");
    const before = await lab.weft(["ipam", "show"]);
    const calls = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const host = i < 20 || i % 2 === 0 ? "worker-1" : "worker-2";
        const netns = await newNetns(`k${i}`);
        return { host, call: { containerID: `conc-${i}`, netns, ifname: "eth0", config: { ...conf(), nodename: host } } };
      }),
    );
    const t0 = Date.now();
    const adds = await Promise.all(calls.map(({ host, call }) => cniAsync(lab, host, { command: "ADD", ...call })));
    console.log(`[tcni] 40 concurrent ADDs in ${Date.now() - t0} ms; failures: ${adds.filter((a) => a.code !== 0).map((a) => JSON.stringify(a.out)).join(" ")}`);
    expect(adds.every((a) => a.code === 0)).toBe(true);
    const addrs = adds.map((a) => a.out.ips[0].address);
    expect(new Set(addrs).size).toBe(40);
    const dels = await Promise.all(calls.map(({ host, call }) => cniAsync(lab, host, { command: "DEL", ...call })));
    expect(dels.every((d) => d.code === 0)).toBe(true);
    expect(await caliCount("worker-1")).toBe(base1);
    expect(await caliCount("worker-2")).toBe(base2);
    expect(await lab.weft(["ipam", "show"])).toBe(before);
  });

  it("GC (1.1.0) releases the attachments the runtime no longer lists", async () => {
    const a = await newNetns("g1");
    const b = await newNetns("g2");
    cni(lab, "worker-1", { command: "ADD", containerID: "keep-me", netns: a, ifname: "eth0", config: conf() });
    const gone = cni(lab, "worker-1", { command: "ADD", containerID: "forget-me", netns: b, ifname: "eth0", args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=gone", config: conf() });
    const r = cni(lab, "worker-1", { command: "GC", config: { ...conf(), cniVersion: "1.1.0", "cni.dev/valid-attachments": [{ containerID: "keep-me", ifname: "eth0" }] } });
    expect(r.code).toBe(0);
    expect(await lab.exec("worker-1", ["ip", "route", "show", gone.out.ips[0].address])).toBe("");
    expect(await lab.exec("worker-1", ["ip", "-o", "link", "show", gone.out.interfaces[0].name], { allowFail: true })).toBe("");
    expect(cni(lab, "worker-1", { command: "CHECK", containerID: "keep-me", netns: a, ifname: "eth0", config: conf() }).code).toBe(0);
    // A GC without the list of valid attachments must not take that as "none": refused.
    const bare = cni(lab, "worker-1", { command: "GC", config: { ...conf(), cniVersion: "1.1.0" } });
    expect(bare.out.code).toBe(7);
    expect(bare.out.details).toMatch(/GC needs cni.dev\/valid-attachments/);
    expect(cni(lab, "worker-1", { command: "CHECK", containerID: "keep-me", netns: a, ifname: "eth0", config: conf() }).code).toBe(0);
  });

  it("two weft networks on one node: each network's GC and DEL touch only its own containers", async () => {
    const other = () => ({ ...conf(), name: "weft-b" });
    const keep = { containerID: "on-b", netns: await newNetns("onb"), ifname: "eth0", config: other() };
    const add = cni(lab, "worker-1", { command: "ADD", ...keep });
    expect(add.code).toBe(0);
    // The first network's GC: none of its attachments is valid any more.
    expect(cni(lab, "worker-1", { command: "GC", config: { ...conf(), cniVersion: "1.1.0", "cni.dev/valid-attachments": [] } }).code).toBe(0);
    // Nor is a DEL for the same container ID in the first network its concern.
    expect(cni(lab, "worker-1", { command: "DEL", ...keep, config: conf() }).code).toBe(0);
    expect(cni(lab, "worker-1", { command: "CHECK", ...keep }).code).toBe(0);
    expect(await lab.ping("pod-3", add.out.ips[0].address.split("/")[0])).toBe(true);
    expect(cni(lab, "worker-1", { command: "DEL", ...keep }).code).toBe(0);
  });

  it("ipam.ipv4_pools (Calico's calico-ipam section) picks the pool, by name or CIDR; an unknown or disabled pool is code 7 and takes nothing", async () => {
    const pool = (disabled: boolean) => `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: zz-picked\nspec:\n  cidr: 10.244.0.0/16\n  ipipMode: Always\n  natOutgoing: true\n  disabled: ${disabled}\n`;
    await lab.apply(pool(false));
    const ipamConf = (pools: string[]) => ({ ...conf(), ipam: { type: "calico-ipam", ipv4_pools: pools } });
    for (const [id, wanted] of [["by-name", "zz-picked"], ["by-cidr", "10.244.0.0/16"]]) {
      const call = { containerID: id, netns: await newNetns(id), ifname: "eth0", config: ipamConf([wanted]) };
      const add = cni(lab, "worker-1", { command: "ADD", ...call });
      console.log(`[tcni] ipv4_pools [${wanted}]: ${JSON.stringify(add.out.ips)}`);
      expect(add.code).toBe(0);
      expect(add.out.ips[0].address).toMatch(/^10\.244\.\d+\.\d+\/32$/);
      // A new block: worker-3 learns its route over BGP first.
      const t0 = Date.now();
      while (!(await lab.ping("pod-3", add.out.ips[0].address.split("/")[0], { timeoutS: 1 })) && Date.now() - t0 < 15_000);
      console.log(`[tcni] pod-3 reaches the ${wanted} pod ${Date.now() - t0} ms after its ADD`);
      expect(await lab.ping("pod-3", add.out.ips[0].address.split("/")[0])).toBe(true);
      expect(cni(lab, "worker-1", { command: "DEL", ...call }).code).toBe(0);
    }
    const before = await lab.weft(["ipam", "show", "--show-blocks"]);
    const netns = await newNetns("nopool");
    const unknown = cni(lab, "worker-1", { command: "ADD", containerID: "nopool", netns, ifname: "eth0", config: ipamConf(["10.99.0.0/16"]) });
    expect(unknown.out.code).toBe(7);
    expect(unknown.out.details).toMatch(/ipam.ipv4_pools: the given pool \(10\.99\.0\.0\/16\) does not exist \(pools: default-ipv4-ippool 192\.168\.0\.0\/16, zz-picked 10\.244\.0\.0\/16\)/);
    await lab.apply(pool(true));
    const disabled = cni(lab, "worker-1", { command: "ADD", containerID: "nopool", netns, ifname: "eth0", config: ipamConf(["zz-picked"]) });
    expect(disabled.out.code).toBe(7);
    expect(disabled.out.details).toMatch(/the given pool \(zz-picked\) exists, but is disabled/);
    expect(await lab.weft(["ipam", "show", "--show-blocks"])).toBe(before);
  });

  // Last: it claims a second block for worker-1, which the cases above count without.
  it("a requested address (Calico's CNI_ARGS IP, or runtimeConfig ips as podman --ip sends it): the container gets it and is reached; a second container asking for it is refused (100), nothing taken; DEL gives it back", async () => {
    const want = "192.168.200.7";
    const first = { containerID: "ipreq1", netns: await newNetns("ipreq1"), ifname: "eth0", args: `IgnoreUnknown=1;IP=${want}`, config: conf() };
    const add = cni(lab, "worker-1", { command: "ADD", ...first });
    console.log(`[tcni] ADD with IP=${want}: ${JSON.stringify(add.out)}`);
    expect(add.code).toBe(0);
    expect(add.out.ips[0].address).toBe(`${want}/32`);
    expect(await lab.weft(["ipam", "show", "--ip", want])).toMatch(/handle: weft\.ipreq1\n  node: worker-1\n  block: 192\.168\.200\.0\/26, affine to worker-1/);
    // Its block is new: pod-3 reaches it once worker-1 has announced it.
    const t0 = Date.now();
    while (!(await lab.ping("pod-3", want)) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 200));
    console.log(`[tcni] pod-3 reached ${want} ${Date.now() - t0} ms after the ADD`);
    expect(await lab.ping("pod-3", want)).toBe(true);
    const before = await handles();
    const second = { containerID: "ipreq2", netns: await newNetns("ipreq2"), ifname: "eth0", config: { ...conf(), runtimeConfig: { ips: [`${want}/24`] } } };
    const taken = cni(lab, "worker-1", { command: "ADD", ...second });
    expect(taken.code).toBe(1);
    expect(taken.out).toMatchObject({ code: 100, msg: `${want} is already in use (handle weft.ipreq1, node worker-1)` });
    expect(await handles()).toBe(before);
    expect(cni(lab, "worker-1", { command: "DEL", ...first }).code).toBe(0);
    const again = cni(lab, "worker-1", { command: "ADD", ...second });
    expect(again.code).toBe(0);
    expect(again.out.ips[0].address).toBe(`${want}/32`);
    expect(cni(lab, "worker-1", { command: "DEL", ...second }).code).toBe(0);
    expect(await lab.weft(["ipam", "show", "--ip", want])).toMatch(/^IP 192\.168\.200\.7 is not assigned/);
  });
});
