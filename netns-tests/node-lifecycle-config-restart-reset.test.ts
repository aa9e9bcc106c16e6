// What an operator sees: a bad config is refused with one line and exit code 2 and
// nothing is touched; SIGTERM leaves weft0 and its routes, a restart adopts them
// without a flap; a weft0 deleted under a running node comes back with its routes;
// weft version names the version the node runs; weft node reset removes everything
// weft installed.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { background, useLab } from "./helpers.js";

describe("node lifecycle", () => {
  const lab = useLab("tlife", "ipip");

  const weft = (args: string[]) => {
    const r = spawnSync("ip", ["netns", "exec", lab.ns("worker-1"), process.execPath, lab.cli(), ...args], { encoding: "utf8", timeout: 30_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  const cases: Array<[string, string, RegExp]> = [
    ["an unknown field", "name: w\naddress: 10.30.0.11/24\ntunnelDevice: weftbad0\nroutez: []\n", /unknown field "routez"/],
    ["a bad next hop", "name: w\naddress: 10.30.0.11/24\ntunnelDevice: weftbad0\nroutes:\n  - {cidr: 10.9.0.0/26, node: x, address: 10.30.0.999}\n", /routes\[0\]\.address: expected an IPv4 address/],
    ["broken YAML", "name: [w\n", /not valid YAML/],
    ["an address on no interface", "name: w\naddress: 10.99.0.11/24\ntunnelDevice: weftbad0\n", /address: 10\.99\.0\.11 is on no interface/],
    ["a route over the node's own subnet (it would replace the connected route)", "name: w\naddress: 10.30.0.11/24\ntunnelDevice: weftbad0\nroutes:\n  - {cidr: 10.30.0.0/24, node: x, address: 10.30.0.12}\n", /routes\[0\]\.cidr: 10\.30\.0\.0\/24 contains this node's address 10\.30\.0\.11/],
    ["a route via the node's own address", "name: w\naddress: 10.30.0.11/24\ntunnelDevice: weftbad0\nroutes:\n  - {cidr: 10.9.0.0/26, node: x, address: 10.30.0.11}\n", /routes\[0\]\.address: 10\.30\.0\.11 is this node's own address/],
  ];
  for (const [what, yaml, re] of cases) {
    it(`refuses ${what}: one line naming the field, exit code 2, nothing touched`, async () => {
      const file = path.join(lab.dir, "bad.yaml");
      writeFileSync(file, yaml);
      const before = await lab.exec("worker-1", ["ip", "route"]);
      const r = weft(["node", "run", "--config", file]);
      console.log(`[tlife] ${what}: exit ${r.code}: ${r.stderr.trim()}`);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(re);
      expect(await lab.exec("worker-1", ["ip", "link", "show", "weftbad0"], { allowFail: true })).toBe("");
      expect(await lab.exec("worker-1", ["ip", "route"])).toBe(before);
    });
  }

  it("refuses a missing config file with exit code 2", () => {
    const r = weft(["node", "run", "--config", "/nonexistent/weft.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read: ENOENT/);
  });

  it("SIGTERM leaves weft0 and its routes; a restart adopts them without deleting a route", async () => {
    const routes = await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
    await lab.stopNode("worker-1");
    expect(await lab.exec("worker-1", ["ip", "link", "show", "weft0"])).toMatch(/weft0/);
    // While no process holds weft0 the kernel marks its routes linkdown; they stay.
    const kept = await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
    expect(kept.replaceAll(" linkdown", "")).toBe(routes);
    const monitor = background(lab, "worker-1", ["timeout", "6", "ip", "monitor", "route"]);
    await lab.restartNode("worker-1");
    const log = await lab.exec("worker-1", ["tail", "-n", "1", path.join(lab.dir, "worker-1.log")]);
    const events = (await monitor.done).trim();
    console.log(`[tlife] restart: ${log.match(/"changed":\d+,"removed":\d+,"kept":\d+/)?.[0]}; route events: ${events ? events.split("\n").length : 0}`);
    expect(log).toMatch(/"changed":0,"removed":0,"kept":3/);
    expect(events).not.toMatch(/Deleted/);
    expect(await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).toBe(routes);
    expect(await lab.ping("pod-1", "192.168.133.194")).toBe(true);
  });

  it("weft0 deleted under the running node: the node makes it again and restores its routes; pods reach again", async () => {
    const routes = await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
    await lab.exec("worker-1", ["ip", "link", "del", "weft0"]);
    const t0 = Date.now();
    let back = "";
    while (Date.now() - t0 < 10_000) {
      back = await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
      if (back === routes) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`[tlife] weft0 deleted: routes back in ${Date.now() - t0} ms`);
    expect(back).toBe(routes);
    const log = await lab.exec("worker-1", ["tail", "-n", "5", path.join(lab.dir, "worker-1.log")]);
    expect(log).toMatch(/weft0 was deleted while the node ran: creating it again and restoring its routes/);
    expect((await lab.exec("worker-1", ["cat", "/sys/class/net/weft0/mtu"])).trim()).toBe("1480");
    expect(await lab.ping("pod-1", "192.168.133.194")).toBe(true);
  });

  it("weft version names the running node's version, pid and start; its metrics carry weft_build_info", async () => {
    const sock = lab.controlSocket("worker-1");
    const r = weft(["version", "--control", sock]);
    console.log(`[tlife] weft version:\n${r.stdout}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Client Version: {2}0\.1\.0\nNode Version: {4}0\.1\.0 \(node worker-1, pid \d+, started 20\d\d-\S+Z\)\n$/);
    expect(weft(["node", "metrics", "--control", sock]).stdout).toMatch(/^weft_build_info\{version="0\.1\.0",nodejs="v20\.\d+\.\d+"\} 1$/m);
    const none = weft(["version", "--control", path.join(lab.dir, "nothing.sock")]);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`Client Version:  0.1.0\nNode Version:    none: no weft node answers on ${path.join(lab.dir, "nothing.sock")}; is it running?\n`);
  });

  it("weft node reset is refused while the node runs (it would put everything back), naming the process", async () => {
    const routes = await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
    const r = weft(["node", "reset"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/weft0 is in use by process \d+ \(.*node run.*\): stop that node first/);
    expect(await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).toBe(routes);
  });

  it("weft node reset removes weft0 and every route with weft's protocol, and can be repeated", async () => {
    await lab.stopNode("worker-1");
    const r = weft(["node", "reset"]);
    expect(r.code).toBe(0);
    expect(await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).toBe("");
    expect(await lab.exec("worker-1", ["ip", "link", "show", "weft0"], { allowFail: true })).toBe("");
    expect(weft(["node", "reset"]).code).toBe(0);
  });
});
