// An etcd that takes the connection and never answers (a partition past a proxy, a
// hung server, a firewall that drops what follows the handshake), and one whose
// connection is never taken (packets dropped: a partitioned member): weft commands and
// weft-cni give up after the calls' deadlines, saying so, and exit at once, instead of
// waiting for good (the first) or ~130 s more for the kernel's connect timeout (the second).
// And a server that answers, but is not etcd: said so, at once.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { createServer as createHttp2Server, type Http2Server } from "node:http2";
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
    await expectGetFails(url);
  });

  it("weft-cni DEL: try again later (code 11), naming the datastore, within 30 s", async () => {
    await expectDelTryAgain(url);
  });

  it("with an etcd user, signing in gives each member 2 s, not a call's 5 s: two such members, three tries: ~16 s (it was ~40 s)", async () => {
    const port = (server.address() as { port: number }).port;
    const two = `etcd://127.0.0.1:${port},localhost:${port}`;
    const { ms, ...r } = await getPools(two, 60_000, { PATH: process.env.PATH ?? "", ETCD_USERNAME: "weft", ETCD_PASSWORD: "secret" });
    console.log(`[etcd-silent] weft get as an etcd user, two silent members: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.stderr).toMatch(/did not answer \(no answer within 2 s\)/);
    expect(r.code).toBe(1);
    expect(ms).toBeLessThan(20_000);
  });
});

describe("an etcd whose connections are never taken (SYNs dropped, as for a partitioned member)", () => {
  // A listener whose one-place accept queue is taken and never accepted from: the
  // kernel drops further SYNs, so a connect neither succeeds nor is refused.
  let holder: ChildProcess;
  let url = "";
  beforeAll(async () => {
    holder = spawn("python3", ["-c", "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(0); p=s.getsockname()[1]\nc=socket.create_connection(('127.0.0.1',p)); print(p, flush=True); time.sleep(300)"]);
    const [port] = (await createInterface({ input: holder.stdout! })[Symbol.asyncIterator]().next()).value.split(" ");
    url = `etcd://127.0.0.1:${port}`;
  });
  afterAll(() => void holder.kill());

  it("weft get and weft-cni DEL fail after the deadlines and exit then, not at the kernel's connect timeout", async () => {
    await Promise.all([expectGetFails(url), expectDelTryAgain(url)]);
  });
});

describe("a server that is not etcd (HTTP/2 answering 404, as a web or API server on that port)", () => {
  let server: Http2Server;
  let url = "";
  beforeAll(async () => {
    server = createHttp2Server((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `etcd://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => void server.close());

  it("weft get: exit 1 at once, saying the server is not etcd (it printed gRPC's 12 UNIMPLEMENTED)", async () => {
    const r = await getPools(url, 30_000);
    console.log(`[etcd-silent] weft get from an HTTP/2 server: exit ${r.code} after ${r.ms} ms: ${r.stderr.trim()}`);
    expect(r.stderr.trim()).toBe(`weft: datastore ${url}: the server there is not etcd (it answered etcd's calls with HTTP 404)`);
    expect(r.code).toBe(1);
  });
});

/** `weft get ippool` against url (killed after timeoutMs), with how long it took. */
async function getPools(url: string, timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string; ms: number }> {
  const t0 = Date.now();
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [CLI, "get", "ippool", "--datastore", url], { timeout: timeoutMs, env }, (err, _out, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })),
  );
  return { ...r, ms: Date.now() - t0 };
}

async function expectGetFails(url: string): Promise<void> {
    const { ms, ...r } = await getPools(url, 60_000);
    console.log(`[etcd-silent] weft get: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.stderr).toMatch(new RegExp(`datastore ${url.replace(/[.]/g, "\\.")} did not answer \\(no answer within 5 s\\)`));
    expect(r.code).toBe(1);
    expect(ms).toBeLessThan(30_000);
}

async function expectDelTryAgain(url: string): Promise<void> {
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
}
