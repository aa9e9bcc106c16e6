// A second `weft node run` on a host that already runs one is refused with a message
// that says why, before it touches the TUN or any route: the first node keeps its
// tunnel, its routes and its control socket.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostNamespace, removeNamespace, weftIn, weftRoutesIn } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import { controlGet } from "../router/control/client.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const run = promisify(execFile);
const NS = "tsn-host";
const dir = tempDir("tsn");
const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
const sock = path.join(dir, "first.sock");

function config(file: string, extra = ""): string {
  const p = path.join(dir, file);
  writeFileSync(p, `name: n1\naddress: 10.99.0.1/24\nencapsulation: VXLAN\n${extra}routes:\n  - cidr: 192.168.50.0/26\n    node: n2\n    address: 10.99.0.2\n`);
  return p;
}

const second = (args: string[]) => weftIn(NS, ["node", "run", ...args]);
const routes = () => weftRoutesIn(NS);

describe("a second node on a host", () => {
  let first: ChildProcess | undefined;
  beforeAll(async () => {
    await hostNamespace(NS, "10.99.0.1/24");
    first = spawn("ip", ["netns", "exec", NS, process.execPath, cli, "node", "run", "--config", config("first.yaml"), "--control", sock], { stdio: "ignore" });
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        await controlGet(sock, "/health/live");
        break;
      } catch (err) {
        if (Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }, 30_000);
  afterAll(async () => {
    first?.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    await removeNamespace(NS);
  });

  it("with the same config: refused, naming the busy tunnel device", async () => {
    const before = await routes();
    const r = await second(["--config", config("same.yaml"), "--control", path.join(dir, "other.sock")]);
    console.log(`[tsn] same config: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/weft0 is held by another process \(is a weft node already running on this host\?/);
    expect(await routes()).toBe(before);
  });

  it("with its own tunnel and VXLAN port but the first's control socket: refused before it programs a route", async () => {
    const before = await routes();
    expect(before).toContain("dev weft0");
    const r = await second(["--config", config("own-tunnel.yaml", "tunnelDevice: weft1\nvxlanPort: 4790\n"), "--control", sock]);
    console.log(`[tsn] own tunnel, same control socket: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/control socket .* belongs to a running weft node/);
    expect(await routes()).toBe(before);
    const links = (await run("ip", ["-n", NS, "-o", "link", "show"], { encoding: "utf8" })).stdout;
    expect(links).not.toContain("weft1");
  });

  it("leaves the first node answering on its control socket", async () => {
    const status = JSON.parse(await controlGet(sock, "/status")) as { name: string; tunnel: { device: string } };
    expect(status.tunnel.device).toBe("weft0");
  });
});
