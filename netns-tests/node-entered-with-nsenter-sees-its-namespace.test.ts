// A node (or weft-cni, see the podman test) entered into a network namespace with a
// bare `nsenter --net`, as some supervisors and runtimes do, keeps the host's /sys
// mount, whose /sys/class/net lists the host's interfaces, not the namespace's. weft
// reads interfaces through the kernel instead: the node finds its uplink, its MTU and
// its TUN as the namespace has them. (It used to refuse: "up0 does not exist".)
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hostNamespace, removeNamespace, weftIn, weftRoutesIn } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

describe("a node entered with a bare nsenter", () => {
  const ns = "tnse-host";
  const dir = tempDir("nsenter");
  afterAll(async () => {
    await weftIn(ns, ["node", "reset"]);
    await removeNamespace(ns);
  });

  it("finds its uplink (up0, MTU 1500) and runs: weft0 at 1480, its route installed", async () => {
    await hostNamespace(ns, "10.77.0.2/24");
    const config = path.join(dir, "node.yaml");
    writeFileSync(config, "name: nsenter-node\naddress: 10.77.0.2/24\nencapsulation: IPIP\nroutes:\n  - {cidr: 192.168.99.0/26, node: other, address: 10.77.0.3}\n");
    const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
    const child = spawn("nsenter", [`--net=/run/netns/${ns}`, process.execPath, cli, "node", "run", "--config", config, "--control", path.join(dir, "node.sock")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const t0 = Date.now();
    while (!/node running/.test(out) && child.exitCode === null && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
    const running = /"msg":"node running"/.exec(out) ? out.split("\n").find((l) => l.includes('"node running"')) ?? "" : out;
    console.log(`[tnse] ${running.slice(0, 300)}`);
    child.kill("SIGTERM");
    await exited;
    expect(running).toMatch(/"uplink":"up0"/);
    expect(running).toMatch(/"tunnelMTU":1480/);
    expect(await weftRoutesIn(ns)).toMatch(/^192\.168\.99\.0\/26 via 10\.77\.0\.3 dev weft0 onlink/);
  });
});
