// Real BGP daemons from Debian, run inside a lab namespace for interop tests.
import { spawn } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Lab } from "../router/lab/lab.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function daemon(lab: Lab, ns: string, dir: string, cmd: string[]): void {
  const log = openSync(path.join(dir, "daemon.log"), "a");
  spawn("ip", ["netns", "exec", lab.ns(ns), ...cmd], { stdio: ["ignore", log, log], detached: true }).unref();
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000, everyMs = 300): Promise<T> {
  const t = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > t) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * The BGPPeer the BIRD labs give worker-1: the router on the gateway (10.30.0.1, AS
 * 65001); `extra` adds fields to its spec (", keepOriginalNextHop: true").
 */
export const gatewayBirdPeer = (extra = "") => `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor-bird}
spec: {peerIP: 10.30.0.1, asNumber: 65001, node: worker-1${extra}}
`;

export class Bird {
  readonly dir: string;
  constructor(
    private readonly lab: Lab,
    private readonly ns: string,
  ) {
    this.dir = path.join(lab.dir, `bird-${ns}`);
  }
  get ctl(): string {
    return path.join(this.dir, "bird.ctl");
  }
  async start(config: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const conf = path.join(this.dir, "bird.conf");
    writeFileSync(conf, config);
    await this.lab.exec(this.ns, ["bird", "-p", "-c", conf]); // check the config first
    daemon(this.lab, this.ns, this.dir, ["bird", "-f", "-c", conf, "-s", this.ctl, "-P", path.join(this.dir, "bird.pid")]);
    await until("bird's control socket", async () => (await this.birdc(["show", "status"])).includes("Daemon is up"), 10_000);
  }
  birdc(args: string[]): Promise<string> {
    return this.lab.exec(this.ns, ["birdc", "-s", this.ctl, ...args]);
  }
}

export class Frr {
  readonly dir: string;
  constructor(
    private readonly lab: Lab,
    private readonly ns: string,
  ) {
    this.dir = path.join(lab.dir, `frr-${ns}`);
  }
  async start(config: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const conf = path.join(this.dir, "bgpd.conf");
    writeFileSync(conf, config);
    daemon(this.lab, this.ns, this.dir, ["/usr/lib/frr/bgpd", "-Z", "-S", "-u", "root", "-g", "root", "-f", conf, "-i", path.join(this.dir, "bgpd.pid"), "--vty_socket", this.dir, "-A", "127.0.0.1"]);
    await until("FRR's vty", async () => (await this.vtysh("show bgp summary")).length > 0, 15_000);
  }
  vtysh(cmd: string): Promise<string> {
    return this.lab.exec(this.ns, ["vtysh", "--vty_socket", this.dir, "-d", "bgpd", "-c", cmd]);
  }
  async json(cmd: string): Promise<any> {
    return JSON.parse(await this.vtysh(`${cmd} json`));
  }
}

export class GoBgp {
  readonly dir: string;
  constructor(
    private readonly lab: Lab,
    private readonly ns: string,
  ) {
    this.dir = path.join(lab.dir, `gobgp-${ns}`);
  }
  async start(toml: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const conf = path.join(this.dir, "gobgpd.toml");
    writeFileSync(conf, toml);
    await this.lab.exec(this.ns, ["gobgpd", "-f", conf, "-d"]); // check the config first
    daemon(this.lab, this.ns, this.dir, ["gobgpd", "-f", conf, "-p", "--api-hosts", "127.0.0.1:50051"]);
    await until("gobgpd's API", async () => (await this.gobgp(["global"])).includes("AS"), 15_000);
  }
  gobgp(args: string[]): Promise<string> {
    return this.lab.exec(this.ns, ["gobgp", "-u", "127.0.0.1", "-p", "50051", ...args]);
  }
}
