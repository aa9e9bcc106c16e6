// A runtime may start weft-cni and write the network configuration a moment later, on a
// non-blocking pipe (Node's child_process does both). The plugin waits for the whole
// configuration instead of failing with EAGAIN (code 5), as it did with a synchronous read.
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../native/index.js";

const plugin = path.join(projectRoot(), "dist", "router", "cni", "main.js");

/** Runs the plugin, writing conf in two parts: the first after delayMs, the rest 100 ms later. */
function late(env: Record<string, string>, conf: string, delayMs: number): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [plugin], { env: { PATH: process.env.PATH ?? "", ...env } });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const half = Math.floor(conf.length / 2);
    setTimeout(() => child.stdin.write(conf.slice(0, half)), delayMs);
    setTimeout(() => child.stdin.end(conf.slice(half)), delayMs + 100);
    child.on("exit", (code) => resolve({ code, stdout }));
  });
}

describe("weft-cni reads a configuration that arrives late, in pieces", () => {
  it("VERSION answers with the configuration's version", async () => {
    const r = await late({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0","name":"k8s-pod-network","type":"weft-cni"}', 400);
    expect(r).toMatchObject({ code: 0 });
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: "0.4.0" });
  });

  it("ADD reads the whole configuration before judging it (here: an IPAM type weft does not do, code 7)", async () => {
    const conf = JSON.stringify({ cniVersion: "1.0.0", name: "k8s-pod-network", type: "weft-cni", datastore: "sqlite:/nonexistent/weft.db", ipam: { type: "host-local" } });
    const r = await late({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "late1", CNI_NETNS: "/run/netns/weft-late-none", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" }, conf, 400);
    console.log(`[cni-late] ADD: exit ${r.code}: ${r.stdout.trim()}`);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 7 });
  });
});
