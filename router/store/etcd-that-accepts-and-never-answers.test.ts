// An etcd that takes the connection and never answers (a partition past a proxy, a
// hung server, a firewall that drops what follows the handshake): weft commands and
// weft-cni give up after the calls' deadlines, saying so, instead of waiting for good.
import { execFile, spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../native/index.js";
import { CLI } from "../cli/built-command.test-helper.js";

const plugin = path.join(projectRoot(), "dist", "router", "cni", "main.js");

describe("an etcd that accepts connections and never answers", () => {
  let server: Server;
  const held: Socket[] = [];
  let url = "";
  beforeAll(async () => {
    server = createServer((s) => void held.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `etcd://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    for (const s of held) s.destroy();
    server.close();
  });

  it("weft get: exit 1 within 30 s, saying it had no answer", async () => {
    const t0 = Date.now();
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [CLI, "get", "ippool", "--datastore", url], { timeout: 60_000 }, (err, _out, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })),
    );
    const ms = Date.now() - t0;
    console.log(`[etcd-silent] weft get: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.stderr).toMatch(new RegExp(`datastore ${url.replace(/[.]/g, "\\.")} did not answer \\(no answer within 5 s\\)`));
    expect(r.code).toBe(1);
    expect(ms).toBeLessThan(30_000);
  });

  it("weft-cni DEL: try again later (code 11), naming the datastore, within 30 s", async () => {
    const t0 = Date.now();
    const conf = JSON.stringify({ cniVersion: "1.0.0", name: "k8s-pod-network", type: "weft-cni", datastore: url, nodename: "worker-1" });
    const r = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [plugin], { env: { PATH: process.env.PATH ?? "", CNI_COMMAND: "DEL", CNI_CONTAINERID: "silent1", CNI_NETNS: "/run/netns/none", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" } });
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stdin.end(conf);
      child.on("exit", (code) => resolve({ code, stdout }));
    });
    const ms = Date.now() - t0;
    console.log(`[etcd-silent] weft-cni DEL: exit ${r.code} after ${ms} ms: ${r.stdout.trim()}`);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 11, msg: `datastore ${url} did not answer (no answer within 5 s); try again` });
    expect(ms).toBeLessThan(30_000);
  });
});
