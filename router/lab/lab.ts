// Builds the seed's topology in network namespaces, runs a weft node per host and
// wires the pods. Every name carries the lab's prefix, so labs run side by side;
// down() removes everything the prefix names, even after a crash.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostVethName, wire } from "../cni/wiring.js";
import path from "node:path";
import { stringify as toYAML } from "yaml";
import { projectRoot } from "../native/index.js";
import { controlGet } from "../control/client.js";
import { GATEWAY, HOSTS, PODS, addressOf, hostByName, type LabHost, type LabMode, type LabPod } from "./topology.js";
import { nsExec, sh, sysctl } from "./sh.js";
import { vtepMAC } from "../dataplane/vtep.js";
import { EtcdServer } from "./etcd.js";
import { ConfigError } from "../node/config.js";

/** A host's tunnel address: the first address of its block, as Calico assigns it. */
export function tunnelAddress(h: LabHost): string {
  const [a] = h.block.split("/");
  return a;
}

export const LAB_ROOT = "/run/weft-lab";

/** A lab's name prefix (namespaces, files, sockets): 1-8 lowercase letters or digits, first a letter. */
export function checkLabPrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9]{0,7}$/.test(prefix)) throw new ConfigError(`lab prefix "${prefix}" must be 1-8 lowercase letters or digits, starting with a letter`);
}

/** Data-path settings the lab's node processes start with; each one left out is the node's default. */
export interface NodeSettings {
  /** Run the nodes with every offload off (WEFT_OFFLOADS=off). */
  offloadsOff?: boolean;
  /** Force the nodes' receive thread on (WEFT_RX_THREAD=1) or off (0); default: the node decides. */
  rxThread?: boolean;
  /** Busy-poll budget of the nodes in microseconds (WEFT_BUSY_POLL_US); default: the node's (off). */
  busyPollMicros?: number;
}

/** The environment a node process gets for its settings. */
function settingsEnv(s: NodeSettings): Record<string, string> {
  return {
    ...(s.offloadsOff ? { WEFT_OFFLOADS: "off" } : {}),
    ...(s.rxThread === undefined ? {} : { WEFT_RX_THREAD: s.rxThread ? "1" : "0" }),
    ...(s.busyPollMicros === undefined ? {} : { WEFT_BUSY_POLL_US: String(s.busyPollMicros) }),
  };
}

export interface LabOptions extends NodeSettings {
  /** Name prefix of every namespace, file and socket of this lab (letters/digits, <= 8). */
  prefix: string;
  log?: (line: string) => void;
  /** Run the nodes from a datastore (the lab's own SQLite file, or etcd in the gateway
   * namespace) instead of static routes; pods then get addresses from IPAM. */
  datastore?: "sqlite" | "etcd";
  /** MTU of the underlay (the gateway's bridges and ports, the hosts' eth0); default 1500. */
  uplinkMTU?: number;
}

/** The seed's pool for a mode (Calico's default pool, natOutgoing on). */
export function poolManifest(mode: LabMode, natOutgoing = true): string {
  const ipip = mode === "ipip" ? "Always" : mode === "crosssubnet" ? "CrossSubnet" : "Never";
  const vxlan = mode === "vxlan" ? "Always" : "Never";
  return `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  blockSize: 26
  cidr: 192.168.0.0/16
  ipipMode: ${ipip}
  natOutgoing: ${natOutgoing}
  nodeSelector: all()
  vxlanMode: ${vxlan}
`;
}

export const ETCD_PORT = 2379;

/** The host end of a lab pod's veth: the name weft-cni gives pod "default/<pod>". */
export function podVeth(pod: string): string {
  return hostVethName({ K8S_POD_NAMESPACE: "default", K8S_POD_NAME: pod }, "");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Lab {
  readonly prefix: string;
  readonly dir: string;
  private readonly log: (line: string) => void;
  /** The lab's own node settings (from its options). */
  private readonly settings: NodeSettings;
  /** The settings of the running nodes: the lab's, or those restartNodes() was given. */
  private running: NodeSettings;
  readonly datastore?: "sqlite" | "etcd";
  /** Routes over BGP (Calico's default) or from the datastore with BGP off (vxlan). */
  backend: "bgp" | "vxlan" = "bgp";
  private etcd?: EtcdServer;
  private podAddrs = new Map<string, string>();
  private readonly uplinkMTU?: number;
  mode: LabMode = "ipip";

  constructor(opts: LabOptions) {
    checkLabPrefix(opts.prefix);
    this.prefix = opts.prefix;
    this.dir = path.join(LAB_ROOT, opts.prefix);
    this.log = opts.log ?? (() => {});
    this.settings = { offloadsOff: opts.offloadsOff, rxThread: opts.rxThread, busyPollMicros: opts.busyPollMicros };
    this.running = this.settings;
    this.datastore = opts.datastore;
    this.uplinkMTU = opts.uplinkMTU;
    const saved = path.join(this.dir, "pods.json");
    if (existsSync(saved)) this.podAddrs = new Map(Object.entries(JSON.parse(readFileSync(saved, "utf8")) as Record<string, string>));
  }

  /** The lab's datastore URL (datastore mode only). */
  get datastoreURL(): string {
    if (this.datastore === "etcd") return `etcd://${GATEWAY.A.split("/")[0]}:${ETCD_PORT}`;
    return `sqlite:${path.join(this.dir, "weft.db")}`;
  }

  /** Runs the weft CLI against the lab's datastore, from the gateway namespace (which
   * reaches etcd there; the SQLite file is on the shared filesystem). */
  weft(args: string[], opts?: { allowFail?: boolean }): Promise<string> {
    return nsExec(this.gw, [process.execPath, this.cli(), ...args, "--datastore", this.datastoreURL], opts);
  }

  /** Applies a manifest to the lab's datastore. */
  async apply(manifest: string): Promise<string> {
    const file = path.join(this.dir, `apply-${Date.now()}.yaml`);
    writeFileSync(file, manifest);
    try {
      return await this.weft(["apply", "-f", file]);
    } catch (err) {
      // Only what weft said (not the command line that ran it in the gateway namespace).
      const said = /weft: ([^\n]*)\s*$/.exec((err as Error).message)?.[1];
      throw new Error(said ? said.replaceAll(`${file}: `, "") : (err as Error).message);
    } finally {
      rmSync(file, { force: true });
    }
  }

  podAddress(pod: string): string {
    const a = this.podAddrs.get(pod) ?? PODS.find((p) => p.name === pod)?.address;
    if (!a) throw new Error(`no pod ${pod} in lab ${this.prefix}`);
    return a;
  }

  /** The etcd server of an etcd lab (to stop and start it). */
  get etcdServer(): EtcdServer | undefined {
    return this.etcd;
  }

  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }
  get gw(): string {
    return this.ns("gw");
  }
  controlSocket(host: string): string {
    return path.join(this.dir, `${host}.sock`);
  }

  exec(target: string, args: string[], opts?: { allowFail?: boolean; timeoutMs?: number }): Promise<string> {
    return nsExec(this.ns(target), args, opts);
  }

  /** Namespaces of this lab that exist now. */
  async namespaces(): Promise<string[]> {
    const out = await sh("ip", ["-j", "netns", "list"], { allowFail: true });
    const list = (out ? (JSON.parse(out) as Array<{ name: string }>) : []).map((n) => n.name);
    return list.filter((n) => n.startsWith(`${this.prefix}-`));
  }

  async up(mode: LabMode = "ipip"): Promise<void> {
    // A lab already up is rebuilt from scratch: say so, since its state goes with it.
    if ((await this.namespaces()).length > 0) this.log(`lab "${this.prefix}" was already up: taking it down first (its datastore and pods go with it)`);
    await this.down();
    mkdirSync(this.dir, { recursive: true });
    this.log("building namespaces: gateway, master, worker-1..3, pod-1..3");
    await this.buildUnderlay();
    if (this.datastore) {
      if (this.datastore === "etcd") {
        this.log("starting etcd in the gateway namespace");
        this.etcd = new EtcdServer({ dir: path.join(this.dir, "etcd"), host: GATEWAY.A.split("/")[0], port: ETCD_PORT, netns: this.gw });
        await this.etcd.start();
      }
      this.log(`datastore ${this.datastoreURL}: applying the ${mode} pool`);
      await this.apply(poolManifest(mode));
    }
    await this.startNodes(mode);
    for (const pod of PODS) {
      // On a datastore the pods come through weft-cni, as a container runtime would add them.
      const address = this.datastore ? await this.addPodWithCni(pod) : (await this.addPod(pod), pod.address);
      this.podAddrs.set(pod.name, address);
    }
    writeFileSync(path.join(this.dir, "pods.json"), JSON.stringify(Object.fromEntries(this.podAddrs)));
    if (this.datastore) await this.waitConverged();
  }

  /**
   * Waits until every host routes every other host's blocks (a cluster lab is up when
   * its pods reach each other, not when its nodes answer); says so, and returns, if that
   * takes longer than timeoutMs. Returns whether it converged.
   */
  async waitConverged(timeoutMs = 15_000): Promise<boolean> {
    const t0 = Date.now();
    let missing: string[] = [];
    for (;;) {
      const tables = await Promise.all(
        HOSTS.map(async (h) => {
          const routes = JSON.parse((await this.exec(h.name, ["ip", "-j", "route", "show", "proto", "87"], { allowFail: true })) || "[]") as Array<{ dst: string; type?: string }>;
          return { host: h.name, own: routes.filter((r) => r.type === "blackhole").map((r) => r.dst), all: new Set(routes.map((r) => r.dst)) };
        }),
      );
      missing = tables.flatMap((t) => tables.filter((o) => o !== t).flatMap((o) => o.own.filter((b) => !t.all.has(b)).map((b) => `${t.host} has no route to ${o.host}'s ${b}`)));
      if (missing.length === 0) return true;
      if (Date.now() - t0 > timeoutMs) {
        this.log(`routes not converged after ${timeoutMs} ms: ${missing.join("; ")}`);
        return false;
      }
      await sleep(100);
    }
  }

  private async buildUnderlay(): Promise<void> {
    const gw = this.gw;
    await sh("ip", ["netns", "add", gw]);
    await nsExec(gw, ["ip", "link", "set", "lo", "up"]);
    await sysctl(gw, "net.ipv4.ip_forward", 1);
    // The gateway's bridges stand for the underlay's switches, which do not run the
    // host's iptables on frames they switch: when br_netfilter is loaded (container
    // tools load it), keep bridged frames out of iptables in this namespace. Its
    // source/destination check uses nft's bridge family, which is not affected.
    for (const k of ["iptables", "ip6tables", "arptables"]) {
      await sysctl(gw, `net.bridge.bridge-nf-call-${k}`, 0, { allowFail: true });
    }
    for (const side of ["A", "B"] as const) {
      const br = `br${side}`;
      await nsExec(gw, ["ip", "link", "add", br, "type", "bridge"]);
      await nsExec(gw, ["ip", "addr", "add", GATEWAY[side], "dev", br]);
      await nsExec(gw, ["ip", "link", "set", br, "up"]);
    }
    const mtu = this.uplinkMTU ? ["mtu", String(this.uplinkMTU)] : [];
    for (const h of HOSTS) {
      const ns = this.ns(h.name);
      await sh("ip", ["netns", "add", ns]);
      await nsExec(ns, ["ip", "link", "set", "lo", "up"]);
      await nsExec(gw, ["ip", "link", "add", "name", `v-${h.short}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      await nsExec(gw, ["ip", "link", "set", `v-${h.short}`, ...mtu, "master", `br${h.subnet}`, "up"]);
      await nsExec(ns, ["ip", "addr", "add", h.address, "dev", "eth0"]);
      await nsExec(ns, ["ip", "link", "set", "eth0", ...mtu, "up"]);
      await nsExec(ns, ["ip", "route", "add", "default", "via", h.gateway]);
      await sysctl(ns, "net.ipv4.ip_forward", 1);
    }
  }

  /** The static config of a host's node for a mode: every other host's block. */
  nodeConfig(h: LabHost, mode: LabMode): Record<string, unknown> {
    const encapFor = (other: LabHost) =>
      mode === "ipip" ? "IPIP" : mode === "vxlan" ? "VXLAN" : mode === "direct" ? "None" : other.subnet === h.subnet ? "None" : "IPIP";
    return {
      name: h.name,
      address: h.address,
      encapsulation: mode === "vxlan" ? "VXLAN" : "IPIP",
      routes: HOSTS.filter((o) => o !== h).map((o) => ({ cidr: o.block, node: o.name, address: addressOf(o), encapsulation: encapFor(o) })),
    };
  }

  /** Starts a node per host for a mode, with the lab's settings unless others are given. */
  async startNodes(mode: LabMode, settings: NodeSettings = this.settings): Promise<void> {
    this.mode = mode;
    this.running = settings;
    this.log(`starting a weft node per host (${this.datastore ? `datastore ${this.datastore}` : `static routes, ${mode}`})`);
    for (const h of HOSTS) {
      if (!this.datastore) writeFileSync(path.join(this.dir, `${h.name}.yaml`), toYAML(this.nodeConfig(h, mode)));
      await this.startNode(h.name);
    }
    for (const h of HOSTS) await this.waitNode(h.name);
  }

  private async startNode(host: string): Promise<void> {
    const logFile = openSync(path.join(this.dir, `${host}.log`), "a");
    const source = this.datastore ? ["--datastore", this.datastoreURL, "--name", host, "--backend", this.backend] : ["--config", path.join(this.dir, `${host}.yaml`)];
    const child = spawn("ip", ["netns", "exec", this.ns(host), process.execPath, this.cli(), "node", "run", ...source, "--control", this.controlSocket(host)], {
      detached: true,
      stdio: ["ignore", logFile, logFile],
      env: { ...process.env, ...settingsEnv(this.running) },
    });
    child.unref();
    writeFileSync(this.pidFile(host), String(child.pid));
  }

  async waitNode(host: string, timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await controlGet(this.controlSocket(host), "/status");
        return;
      } catch (err) {
        if (Date.now() > until) {
          const logPath = path.join(this.dir, `${host}.log`);
          const tail = existsSync(logPath) ? readFileSync(logPath, "utf8").trim().split("\n").slice(-3).join("\n") : "";
          throw new Error(`weft node on ${host} did not come up within ${timeoutMs} ms: ${(err as Error).message}\n${tail}`);
        }
        await sleep(100);
      }
    }
  }

  /** Path of the weft command's entry point (built). */
  cli(): string {
    return path.join(projectRoot(), "dist", "router", "cli", "main.js");
  }

  private pidFile(host: string): string {
    return path.join(this.dir, `${host}.pid`);
  }

  /** Whether one host's node process, as last started, still runs. */
  nodeRunning(host: string): boolean {
    const file = this.pidFile(host);
    return existsSync(file) && alive(Number(readFileSync(file, "utf8")));
  }

  /** Sends one host's node a signal (SIGHUP: reload), as systemctl reload or kill does. */
  signalNode(host: string, signal: NodeJS.Signals): void {
    process.kill(Number(readFileSync(this.pidFile(host), "utf8")), signal);
  }

  /** Stops one host's node with SIGTERM and waits for it to exit. */
  async stopNode(host: string): Promise<void> {
    const file = this.pidFile(host);
    if (!existsSync(file)) return;
    const pid = Number(readFileSync(file, "utf8"));
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* gone */
    }
    const until = Date.now() + 5000;
    while (alive(pid) && Date.now() < until) await sleep(50);
    if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(file, { force: true });
  }

  /** Starts one host's node again from its config file (mode and settings unchanged). */
  async restartNode(host: string, timeoutMs?: number): Promise<void> {
    await this.stopNode(host);
    await this.startNode(host);
    await this.waitNode(host, timeoutMs);
  }

  /** Stops the node processes (SIGTERM: they leave weft0 and routes for the next start). */
  async stopNodes(): Promise<void> {
    await Promise.all(HOSTS.map((h) => this.stopNode(h.name)));
  }

  /**
   * Stops every node and starts them again in a mode: with the lab's settings, or with
   * these changes to them (for this start only; the next restart goes back to the lab's).
   */
  async restartNodes(mode: LabMode, changes: NodeSettings = {}): Promise<void> {
    await this.stopNodes();
    // Static routes of another mode: remove the old ones so each node programs its own.
    for (const h of HOSTS) await this.exec(h.name, ["ip", "route", "flush", "proto", "87"], { allowFail: true });
    await this.startNodes(mode, { ...this.settings, ...changes });
  }

  /** Creates the pod's namespace and runs weft-cni ADD in its host's namespace; returns the address. */
  async addPodWithCni(pod: LabPod): Promise<string> {
    const ns = this.ns(pod.name);
    await sh("ip", ["netns", "add", ns]);
    await nsExec(ns, ["ip", "link", "set", "lo", "up"]);
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn("ip", ["netns", "exec", this.ns(pod.host), process.execPath, path.join(projectRoot(), "dist", "router", "cni", "main.js")], {
        env: { PATH: process.env.PATH ?? "", CNI_COMMAND: "ADD", CNI_CONTAINERID: `${this.prefix}-${pod.name}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: "eth0", CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`, CNI_PATH: "/usr/lib/cni" },
      });
      let stdout = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`weft-cni ADD for ${pod.name} failed: ${stdout.trim()}`))));
      p.stdin.end(JSON.stringify({ cniVersion: "1.0.0", name: "weft", type: "weft-cni", datastore: this.datastoreURL, nodename: pod.host, log_file: path.join(this.dir, "cni.log") }));
    });
    return (JSON.parse(out) as { ips: Array<{ address: string }> }).ips[0].address.split("/")[0];
  }

  /** Wires a static pod with weft-cni's own wiring (Calico's), run from outside its host. */
  async addPod(pod: LabPod, mtu?: number): Promise<void> {
    const ns = this.ns(pod.name);
    const tunnelMTU = mtu ?? Number((await this.exec(pod.host, ["cat", "/sys/class/net/weft0/mtu"], { allowFail: true })).trim() || 1480);
    await sh("ip", ["netns", "add", ns]);
    await nsExec(ns, ["ip", "link", "set", "lo", "up"]);
    await wire({ netns: `/run/netns/${ns}`, hostNetns: `/run/netns/${this.ns(pod.host)}`, ifname: "eth0", hostVeth: podVeth(pod.name), address: pod.address, mtu: tunnelMTU, owner: `lab:${pod.name}` });
  }

  /**
   * Replaces the weft nodes on these hosts by the kernel's own vxlan device (VNI 4096,
   * port 4789, static FDB and neighbour entries as Calico programs them), each
   * using the VTEP MAC weft derives for its host, so weft and kernel VTEPs interoperate.
   */
  async useKernelVxlan(hosts: string[], peers: string[] = HOSTS.map((h) => h.name)): Promise<void> {
    for (const name of hosts) {
      await this.stopNode(name);
      await this.exec(name, [process.execPath, this.cli(), "node", "reset"]);
      const h = hostByName(name);
      const run = (args: string[]) => this.exec(name, args);
      await run(["ip", "link", "add", "vxlan0", "type", "vxlan", "id", "4096", "dstport", "4789", "local", addressOf(h), "dev", "eth0", "nolearning"]);
      await run(["ip", "link", "set", "vxlan0", "address", vtepMAC(name), "mtu", "1450", "up"]);
      await run(["ip", "addr", "add", `${tunnelAddress(h)}/32`, "dev", "vxlan0"]);
      for (const o of HOSTS.filter((x) => x.name !== name && peers.includes(x.name))) {
        await run(["bridge", "fdb", "append", vtepMAC(o.name), "dev", "vxlan0", "dst", addressOf(o)]);
        await run(["ip", "neigh", "replace", tunnelAddress(o), "lladdr", vtepMAC(o.name), "dev", "vxlan0", "nud", "permanent"]);
        await run(["ip", "route", "replace", o.block, "via", tunnelAddress(o), "dev", "vxlan0", "onlink"]);
      }
    }
  }

  async removeKernelVxlan(hosts: string[]): Promise<void> {
    for (const name of hosts) await this.exec(name, ["ip", "link", "del", "vxlan0"], { allowFail: true });
  }

  /**
   * Makes hosts' eth0 merge what they receive as a NIC's GRO does (a veth merges only
   * with GRO on and the sending side not segmenting for it; gro_flush_timeout holds
   * packets for merging as a NIC's interrupt coalescing does), or undoes it. Needs ethtool.
   */
  async nicGro(hosts: string[], on: boolean): Promise<void> {
    for (const name of hosts) {
      const h = hostByName(name);
      await this.exec("gw", ["ethtool", "-K", `v-${h.short}`, "tso", on ? "off" : "on", "gso", on ? "off" : "on"]);
      await this.exec(name, ["ethtool", "-K", "eth0", "gro", on ? "on" : "off"]);
      await this.exec(name, ["sh", "-c", `echo ${on ? 50000 : 0} > /sys/class/net/eth0/gro_flush_timeout && echo ${on ? 10 : 0} > /sys/class/net/eth0/napi_defer_hard_irqs`]);
    }
  }

  /** Sets a pod's MTU on both ends of its veth. */
  async setPodMTU(pod: string, mtu: number): Promise<void> {
    const p = PODS.find((x) => x.name === pod)!;
    await this.exec(p.host, ["ip", "link", "set", podVeth(pod), "mtu", String(mtu)]);
    await this.exec(pod, ["ip", "link", "set", "eth0", "mtu", String(mtu)]);
    await this.exec(pod, ["ip", "route", "flush", "cache"], { allowFail: true });
  }

  /**
   * A cloud's source/destination check on the gateway's bridges: a frame whose IP
   * source (from a host) or destination (to a host) is not that host's address is
   * dropped, so unencapsulated pod traffic between hosts dies, as on AWS.
   */
  async setSrcDstCheck(on: boolean): Promise<void> {
    const rules = HOSTS.flatMap((h) => {
      const a = addressOf(h);
      return [`iifname "v-${h.short}" ip saddr != ${a} drop`, `oifname "v-${h.short}" ip daddr != ${a} drop`];
    });
    const table = on
      ? `table bridge srcdst {}\ndelete table bridge srcdst\ntable bridge srcdst {\n chain forward { type filter hook forward priority 0; policy accept;\n  ${rules.join("\n  ")}\n }\n chain input { type filter hook input priority 0; policy accept;\n  ${rules.filter((r) => r.startsWith("iif")).join("\n  ")}\n }\n}\n`
      : "table bridge srcdst {}\ndelete table bridge srcdst\n";
    const file = path.join(this.dir, "srcdst.nft");
    writeFileSync(file, table);
    await nsExec(this.gw, ["nft", "-f", file]);
  }

  /** Restarts every node with another backend (the seed redeploys for VXLAN with BGP off). */
  async switchBackend(backend: "bgp" | "vxlan"): Promise<void> {
    this.backend = backend;
    await this.stopNodes();
    for (const h of HOSTS) await this.startNode(h.name);
    for (const h of HOSTS) await this.waitNode(h.name);
  }

  /** A host behind the gateway (10.40.0.2) that knows no pod routes: the outside world. */
  async addExternalHost(): Promise<string> {
    const ns = this.ns("ext");
    await sh("ip", ["netns", "add", ns]);
    await nsExec(ns, ["ip", "link", "set", "lo", "up"]);
    await nsExec(this.gw, ["ip", "link", "add", "name", "v-ext", "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await nsExec(this.gw, ["ip", "addr", "add", "10.40.0.1/24", "dev", "v-ext"]);
    await nsExec(this.gw, ["ip", "link", "set", "v-ext", "up"]);
    await nsExec(ns, ["ip", "addr", "add", "10.40.0.2/24", "dev", "eth0"]);
    await nsExec(ns, ["ip", "link", "set", "eth0", "up"]);
    await nsExec(ns, ["ip", "route", "add", "default", "via", "10.40.0.1"]);
    return "10.40.0.2";
  }

  /** One ping; true when answered. */
  async ping(from: string, to: string, opts: { timeoutS?: number; size?: number; df?: boolean; count?: number } = {}): Promise<boolean> {
    const count = opts.count ?? 1;
    const args = ["ping", "-n", "-c", String(count), "-i", "0.2", "-W", String(opts.timeoutS ?? 2)];
    if (opts.size !== undefined) args.push("-s", String(opts.size));
    if (opts.df) args.push("-M", "do");
    args.push(to);
    try {
      await this.exec(from, args, { timeoutMs: ((opts.timeoutS ?? 2) + 3 + count) * 1000 });
      return true;
    } catch {
      return false;
    }
  }

  /** Pod x pod reachability (one ping each, retried once). */
  async reachability(): Promise<Record<string, Record<string, boolean>>> {
    const m: Record<string, Record<string, boolean>> = {};
    for (const a of PODS) {
      m[a.name] = {};
      for (const b of PODS) {
        if (a === b) continue;
        const to = this.podAddress(b.name);
        m[a.name][b.name] = (await this.ping(a.name, to, { timeoutS: 1 })) || (await this.ping(a.name, to, { timeoutS: 1 }));
      }
    }
    return m;
  }

  async nodeStatus(host: string): Promise<Record<string, unknown>> {
    return JSON.parse(await controlGet(this.controlSocket(host), "/status")) as Record<string, unknown>;
  }

  async counters(host: string): Promise<Record<string, number>> {
    return JSON.parse(await controlGet(this.controlSocket(host), "/counters")) as Record<string, number>;
  }

  /** Removes every process, namespace and file of this lab. Safe to repeat. */
  async down(): Promise<void> {
    await this.stopNodes();
    // Processes left in the lab's namespaces (iperf3, captures, a crashed run).
    for (const ns of await this.namespaces()) {
      const pids = (await sh("ip", ["netns", "pids", ns], { allowFail: true })).split(/\s+/).filter(Boolean).map(Number);
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
    for (const ns of await this.namespaces()) await sh("ip", ["netns", "del", ns], { allowFail: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export { HOSTS, PODS, hostByName };
