// An etcd server for labs and tests: its own data directory, optionally inside a
// lab namespace, stopped and started again at will (the datastore-outage test).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import path from "node:path";
import { connect as tlsConnect } from "node:tls";
import { Etcd3 } from "etcd3";

export interface EtcdOptions {
  dir: string;
  host: string; // address to listen on
  port: number;
  netns?: string;
  /** Serve clients over TLS with this certificate, accepting only clients with a certificate from ca. */
  tls?: { ca: string; cert: string; key: string };
  /** More of etcd's flags (e.g. --auth-token-ttl), taken at each start. */
  args?: string[];
}

export class EtcdServer {
  private child?: ChildProcess;
  constructor(readonly opts: EtcdOptions) {}

  get url(): string {
    return `${this.opts.tls ? "etcds" : "etcd"}://${this.opts.host}:${this.opts.port}`;
  }

  async start(): Promise<void> {
    const { dir, host, port, netns } = this.opts;
    mkdirSync(dir, { recursive: true });
    const log = openSync(path.join(dir, "etcd.log"), "a");
    const scheme = this.opts.tls ? "https" : "http";
    const tls = this.opts.tls ? ["--cert-file", this.opts.tls.cert, "--key-file", this.opts.tls.key, "--trusted-ca-file", this.opts.tls.ca, "--client-cert-auth"] : [];
    const args = [
      "--name", "weft", "--data-dir", path.join(dir, "data"), ...tls,
      "--listen-client-urls", `${scheme}://${host}:${port}`, "--advertise-client-urls", `${scheme}://${host}:${port}`,
      "--listen-peer-urls", `http://${host}:${port + 1}`, "--initial-advertise-peer-urls", `http://${host}:${port + 1}`,
      "--initial-cluster", `weft=http://${host}:${port + 1}`,
      ...(this.opts.args ?? []),
    ];
    this.child = netns
      ? spawn("ip", ["netns", "exec", netns, "etcd", ...args], { stdio: ["ignore", log, log], detached: true })
      : spawn("etcd", args, { stdio: ["ignore", log, log], detached: true });
    this.child.unref();
    await this.waitReady(netns);
  }

  /** Waits until etcd answers (from inside its namespace when it has one). */
  private async waitReady(netns?: string): Promise<void> {
    const until = Date.now() + 20_000;
    for (;;) {
      const ok = netns ? await this.probeInNs(netns) : await this.probe();
      if (ok) return;
      if (Date.now() > until) throw new Error(`etcd did not answer on ${this.url} within 20 s (log: ${path.join(this.opts.dir, "etcd.log")})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async probe(): Promise<boolean> {
    // Over TLS, answering the handshake at all is enough (the probe has no client certificate).
    if (this.opts.tls) return new Promise((resolve) => {
      const s = tlsConnect({ host: this.opts.host, port: this.opts.port, rejectUnauthorized: false }, () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    const c = new Etcd3({ hosts: `http://${this.opts.host}:${this.opts.port}`, dialTimeout: 500 });
    try {
      await c.get("/probe").exec();
      return true;
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  private probeInNs(netns: string): Promise<boolean> {
    return new Promise((resolve) => {
      const p = spawn("ip", ["netns", "exec", netns, "etcdctl", "--endpoints", `http://${this.opts.host}:${this.opts.port}`, "--dial-timeout", "500ms", "endpoint", "health"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ETCDCTL_API: "3" } });
      let out = "";
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (out += d));
      // With authentication on, a probe without a user is refused, by an etcd that answers.
      p.on("close", (code) => resolve(code === 0 || /user name is empty/.test(out)));
    });
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 5000).unref();
    });
    this.child = undefined;
  }
}
