// The tunnel device's name is taken by a device weft cannot use (a bridge, a TAP): the
// node refuses to start, says what is in the way and how to clear it, and programs
// no route.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostNamespace, removeNamespace, weftIn, weftRoutesIn } from "./helpers.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const run = promisify(execFile);
const NS = "ttk-host";
const dir = tempDir("ttk");
const config = path.join(dir, "node.yaml");
const start = () => weftIn(NS, ["node", "run", "--config", config, "--control", path.join(dir, "n.sock")]);
const weftRoutes = () => weftRoutesIn(NS);

describe("a tunnel device name taken by another device", () => {
  beforeAll(async () => {
    await hostNamespace(NS, "10.96.0.1/24");
    writeFileSync(config, "name: n1\naddress: 10.96.0.1/24\nencapsulation: VXLAN\nroutes:\n  - {cidr: 192.168.5.0/26, node: n2, address: 10.96.0.2}\n");
  });
  afterAll(async () => {
    await removeNamespace(NS);
  });

  it("a bridge named weft0: refused, naming it and how to clear it; no route", async () => {
    await run("ip", ["-n", NS, "link", "add", "weft0", "type", "bridge"]);
    const r = await start();
    console.log(`[ttk] bridge: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/weft0 exists and is not a TUN device; remove it \(ip link del weft0\) or give weft another tunnelDevice/);
    expect(await weftRoutes()).toBe("");
    await run("ip", ["-n", NS, "link", "del", "weft0"]);
  });

  it("a TAP named weft0: refused the same way", async () => {
    await run("ip", ["-n", NS, "tuntap", "add", "dev", "weft0", "mode", "tap"]);
    const r = await start();
    console.log(`[ttk] tap: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/weft0 exists and is a TUN\/TAP device weft cannot attach to/);
    expect(await weftRoutes()).toBe("");
  });
});
