// The tunnel device's name is taken by a device weft cannot use (a bridge, a TAP): the
// node refuses to start, says what is in the way and how to clear it, and programs
// no route.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireRoot } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";

const run = promisify(execFile);
const NS = "ttk-host";
const dir = mkdtempSync(path.join(tmpdir(), "weft-ttk-"));
const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
const config = path.join(dir, "node.yaml");

async function start(): Promise<{ code: number; stderr: string }> {
  try {
    await run("ip", ["netns", "exec", NS, "timeout", "20", process.execPath, cli, "node", "run", "--config", config, "--control", path.join(dir, "n.sock")], { encoding: "utf8" });
    return { code: 0, stderr: "" };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

const weftRoutes = async () => (await run("ip", ["-n", NS, "route", "show", "proto", "87"], { encoding: "utf8" })).stdout.trim();

describe("a tunnel device name taken by another device", () => {
  beforeAll(async () => {
    requireRoot();
    await run("ip", ["netns", "del", NS]).catch(() => {});
    await run("ip", ["netns", "add", NS]);
    await run("ip", ["-n", NS, "link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    await run("ip", ["-n", NS, "addr", "add", "10.96.0.1/24", "dev", "up0"]);
    await run("ip", ["-n", NS, "link", "set", "up0", "up"]);
    writeFileSync(config, "name: n1\naddress: 10.96.0.1/24\nencapsulation: VXLAN\nroutes:\n  - {cidr: 192.168.5.0/26, node: n2, address: 10.96.0.2}\n");
  });
  afterAll(async () => {
    await run("ip", ["netns", "del", NS]).catch(() => {});
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
