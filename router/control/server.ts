// The node's control socket: HTTP over a unix socket (/run/weft/<node>.sock).
import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { rmSync } from "node:fs";
import { makeDirs } from "../native/dirs.js";
import path from "node:path";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Counters } from "../dataplane/counters.js";
import type { HttpListeners } from "./http.js";
import { ConfigError } from "../node/config.js";
import type { PeerStatus } from "../bgp/speaker.js";
import { weftVersion } from "../version.js";

export const CONTROL_DIR = "/run/weft";

/** The longest path a unix socket may have (sun_path less its NUL); Node shortens a longer one without a word. */
export const SOCKET_PATH_MAX = 107;

/**
 * /run/weft/<node>.sock; for a name too long for that (Kubernetes allows 253
 * characters), its first 60 and a hash of it: the node and the commands that look for
 * it (`--node`) compute the same path.
 */
export function controlSocketPath(node: string): string {
  const plain = path.join(CONTROL_DIR, `${node}.sock`);
  if (Buffer.byteLength(plain) <= SOCKET_PATH_MAX) return plain;
  return path.join(CONTROL_DIR, `${node.slice(0, 60)}-${createHash("sha1").update(node).digest("hex").slice(0, 8)}.sock`);
}

/**
 * A list in a control answer written a slice at a time, each item as view(item), with a
 * turn of the event loop between slices: a peer's 100,000 routes made 19 MB of JSON
 * built in one go, which held the data path (on the same thread) for about 0.3 s.
 */
export class Listed<T = unknown> {
  constructor(
    readonly items: readonly T[],
    readonly view: (item: T) => unknown = (x) => x,
  ) {}
}

/** Items written per slice of a Listed. */
const SLICE = 2000;

/** Writes body as JSON: its lists (or body itself, when it is one) a slice at a time. */
export async function writeJSON(res: http.ServerResponse, body: unknown): Promise<void> {
  res.writeHead(200, { "content-type": "application/json" });
  const write = async (text: string) => {
    if (res.write(text)) return;
    // A reader that is slower than we are: wait for it (or for it to go).
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  };
  const value = async (x: unknown): Promise<void> => {
    const v = Array.isArray(x) ? new Listed(x) : x;
    if (!(v instanceof Listed)) return write(JSON.stringify(v) ?? "null");
    await write("[");
    for (let i = 0; i < v.items.length && !res.destroyed; i += SLICE) {
      if (i) await new Promise((resolve) => setImmediate(resolve));
      await write((i ? "," : "") + v.items.slice(i, i + SLICE).map((x) => JSON.stringify(v.view(x))).join(","));
    }
    await write("]");
  };
  if (body && typeof body === "object" && !(body instanceof Listed) && !Array.isArray(body)) {
    let first = true;
    await write("{");
    for (const [k, v] of Object.entries(body)) {
      await write(`${first ? "" : ","}${JSON.stringify(k)}:`);
      await value(v);
      first = false;
    }
    await write("}");
  } else await value(body);
  res.end();
}

export interface ControlSources {
  status(): unknown;
  /** The routes, as weft node routes shows them (lists as Listed: written a slice at a time). */
  routes(): unknown;
  counters(): Counters;
  /** Pods' packets dropped in weft's nftables table, by why (cluster nodes). */
  podDrops?(): Promise<Record<string, number>>;
  /** BGP peers and readiness (cluster nodes). */
  bgp?(): { enabled: boolean; peers: PeerStatus[]; ready: boolean; reason: string };
}

/** How the fast path's counters (by name) become Prometheus families; each counter lands in exactly one. */
export const DATAPLANE_FAMILIES: Array<{ name: string; help: string; label: string; match: (counter: string) => string | undefined; scale?: number }> = [
  {
    name: "weft_dataplane_drops_total",
    help: "Packets dropped by the fast path, by reason",
    label: "reason",
    match: (c) => (c.startsWith("drop_") ? c.slice(5) : undefined),
  },
  {
    name: "weft_dataplane_bytes_total",
    help: "Bytes of inner packets encapsulated and decapsulated",
    label: "direction",
    match: (c) => /^bytes_(encapsulated|decapsulated)$/.exec(c)?.[1],
  },
  {
    name: "weft_dataplane_batches_total",
    help: "System calls that read a batch, by side (tun: from weft0, network: from the IPIP or VXLAN socket)",
    label: "side",
    match: (c) => /^(tun|network)_batches$/.exec(c)?.[1],
  },
  {
    name: "weft_dataplane_stage_seconds_total",
    help: "Time spent in each data-path stage (counted only with WEFT_STAGE_TIMING=1)",
    label: "stage",
    match: (c) => (c.startsWith("stage_ns_") ? c.slice(9) : undefined),
    scale: 1e-9,
  },
  {
    name: "weft_dataplane_busy_polls_total",
    help: "Busy-polls after a batch (WEFT_BUSY_POLL_US): hit found a readable fd, miss ran out of time",
    label: "result",
    match: (c) => /^busy_poll_(hit|miss)e?s$/.exec(c)?.[1],
  },
  {
    name: "weft_dataplane_packets_total",
    help: "Packets handled by the fast path, by event",
    label: "event",
    match: (c) => (/^(drop_|bytes_|stage_ns_|busy_poll_)|_batches$/.test(c) ? undefined : c),
  },
];

/** Readiness as /health/ready and /readiness answer it: Calico's BGP rule, or always ready without BGP. */
export function readiness(src: ControlSources): { ready: boolean; reason: string } {
  const b = src.bgp?.() ?? { ready: true, reason: "static routes: no BGP" };
  return { ready: b.ready, reason: b.reason };
}

export const EVENT_LOOP_SAMPLE_MS = 100;

/** The node's metrics; process: also the process's own (CPU, memory, event loop, as prom-client collects them). */
export function metricsRegistry(src: ControlSources, process = false): Registry {
  const registry = new Registry();
  // The event loop's delay is sampled every 100 ms, not prom-client's default 10 ms: a
  // timer that woke an idle node 100 times a second (~0.2 s of CPU a minute, half of
  // what an idle node used); a block of the loop still shows in the next sample.
  if (process) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  // Which version runs, as Prometheus exporters say it: a constant 1 with the version as a label.
  new Gauge({ name: "weft_build_info", help: "1, labelled with the weft and Node.js versions this node runs", labelNames: ["version", "nodejs"], registers: [registry] }).set({ version: weftVersion(), nodejs: globalThis.process.version }, 1);
  // One Prometheus family per unit: packets, bytes, batches, seconds, busy-polls, drops.
  for (const family of DATAPLANE_FAMILIES) {
    new Counter({
      name: family.name,
      help: family.help,
      labelNames: [family.label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [counter, v] of Object.entries(src.counters())) {
          const label = family.match(counter);
          if (label !== undefined) this.inc({ [family.label]: label }, family.scale ? v * family.scale : v);
        }
      },
    });
  }
  new Gauge({
    name: "weft_bgp_sessions",
    help: "BGP sessions by peer and state (1 = in this state)",
    labelNames: ["peer", "type", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.bgp?.().peers ?? []) this.set({ peer: p.address, type: p.type, state: p.state }, 1);
    },
  });
  new Gauge({
    name: "weft_bgp_prefixes_received",
    help: "Prefixes received from each BGP peer",
    labelNames: ["peer"],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.bgp?.().peers ?? []) this.set({ peer: p.address }, p.prefixesReceived);
    },
  });
  new Gauge({
    name: "weft_bgp_prefixes_sent",
    help: "Prefixes each BGP peer has from this node: its blocks, the routes it passes on or reflects",
    labelNames: ["peer"],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.bgp?.().peers ?? []) this.set({ peer: p.address }, p.prefixesSent);
    },
  });
  new Gauge({
    name: "weft_bgp_prefixes_filtered",
    help: "Prefixes a BGP peer's BGPFilters reject: received from it (import) and kept from it (export); peers without filters have none",
    labelNames: ["peer", "direction"],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.bgp?.().peers ?? []) {
        if (!p.filters) continue;
        this.set({ peer: p.address, direction: "import" }, p.filters.importRejected);
        this.set({ peer: p.address, direction: "export" }, p.filters.exportRejected);
      }
    },
  });
  if (src.podDrops) {
    const drops = src.podDrops.bind(src);
    new Counter({
      name: "weft_pod_packets_dropped_total",
      help: "Packets from this host's pods dropped by weft's nftables table: ipip and vxlan (encapsulated by a pod: masqueraded, other nodes would take them as a node's), spoofed_source (a source address not the pod's)",
      labelNames: ["reason"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [reason, n] of Object.entries(await drops())) this.inc({ reason }, n);
      },
    });
  }
  new Counter({
    name: "weft_bgp_session_established_total",
    help: "Times each BGP session reached Established (more than once: it went down and came back; a flapping peer keeps counting)",
    labelNames: ["peer"],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.bgp?.().peers ?? []) this.inc({ peer: p.address }, p.established);
    },
  });
  new Gauge({
    name: "weft_datastore_reachable",
    help: "1 while the datastore answers, 0 while the node forwards with the last state it gave (cluster nodes)",
    labelNames: ["datastore"],
    registers: [registry],
    collect() {
      this.reset();
      const d = (src.status() as { datastore?: { url: string; reachable: boolean } }).datastore;
      if (d) this.set({ datastore: d.url }, d.reachable ? 1 : 0);
    },
  });
  new Gauge({
    name: "weft_routes_applied",
    help: "1 when the host took every route and rule of the last sync, 0 while it refuses part of them (weft node status says which; cluster nodes)",
    labelNames: ["backend"],
    registers: [registry],
    collect() {
      this.reset();
      const st = src.status() as { mode?: string; backend?: string; applyError?: string | null };
      if (st.mode === "datastore") this.set({ backend: st.backend ?? "" }, st.applyError ? 0 : 1);
    },
  });
  new Gauge({
    name: "weft_routes",
    help: "Kernel routes weft installed at its last sync, by type (blackhole: this node's own blocks; tunnel: via the tunnel device; direct: via the uplink; external: from external BGP peers, at metric 32)",
    labelNames: ["type"],
    registers: [registry],
    collect() {
      this.reset();
      const routes = (src.status() as { routes?: Record<string, number> }).routes;
      for (const [type, n] of Object.entries(routes ?? {})) this.set({ type }, n);
    },
  });
  const ipam = () => (src.status() as { ipam?: Array<{ pool: string; blocks: number; inUse: number; free: number }> }).ipam ?? [];
  new Gauge({
    name: "weft_ipam_blocks",
    help: "Address blocks this node holds (its affinity), by IP pool (cluster nodes)",
    labelNames: ["pool"],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of ipam()) this.set({ pool: u.pool }, u.blocks);
    },
  });
  new Gauge({
    name: "weft_ipam_addresses",
    help: "Addresses in this node's blocks, by IP pool and state (in_use: assigned to a pod or the tunnel; free: not assigned) (cluster nodes)",
    labelNames: ["pool", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of ipam()) {
        this.set({ pool: u.pool, state: "in_use" }, u.inUse);
        this.set({ pool: u.pool, state: "free" }, u.free);
      }
    },
  });
  new Gauge({
    name: "weft_datastore_unreadable_records",
    help: "datastore records under weft's keys that weft cannot read and skips (written around weft; weft node status names them; cluster nodes)",
    labelNames: ["datastore"],
    registers: [registry],
    collect() {
      this.reset();
      const st = src.status() as { datastore?: { url: string }; unreadableRecords?: Record<string, string> };
      if (st.datastore) this.set({ datastore: st.datastore.url }, Object.keys(st.unreadableRecords ?? {}).length);
    },
  });
  return registry;
}

/**
 * Throws if a live node answers on this control socket. A node checks before it touches
 * the TUN or any route (a second node on a host must not take over the first's routes
 * and then fail), and again when it listens: a socket file left by a node that is gone
 * is replaced, one a running node answers on is not.
 */
export async function controlSocketFree(socketPath: string): Promise<void> {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > SOCKET_PATH_MAX) throw new ConfigError(`control socket ${socketPath}: ${bytes} bytes, and a unix socket's path holds at most ${SOCKET_PATH_MAX}: give a shorter one with --control`);
  if (await answers(socketPath)) throw new Error(`control socket ${socketPath} belongs to a running weft node; stop it first, or give this node its own --control`);
  // Its directory too, before the node touches anything.
  try {
    makeDirs(path.dirname(socketPath));
  } catch (err) {
    throw new Error(`control socket ${socketPath}: cannot make its directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Whether something accepts connections on the unix socket at path. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** Serves the control socket, and from now on the TCP listeners too (closed with it). */
export async function startControlServer(socketPath: string, src: ControlSources, listeners?: HttpListeners): Promise<http.Server> {
  const registry = metricsRegistry(src, true);
  const json = (res: http.ServerResponse, body: unknown) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer(async (req, res) => {
    try {
      switch (req.url) {
        case "/status":
          return json(res, { version: weftVersion(), pid: process.pid, ...(src.status() as object), ...(src.podDrops ? { podDrops: await src.podDrops() } : {}) });
        case "/routes":
          return await writeJSON(res, src.routes());
        case "/counters":
          return json(res, src.counters());
        case "/bgp":
          return json(res, src.bgp?.() ?? { enabled: false, peers: [], ready: true, reason: "static routes: no BGP" });
        case "/health/live":
          // Answering at all means the event loop (and with it every batch loop) runs.
          return json(res, { live: true });
        case "/health/ready": {
          const r = readiness(src);
          res.writeHead(r.ready ? 200 : 503, { "content-type": "application/json" });
          return res.end(JSON.stringify(r));
        }
        case "/metrics":
          res.writeHead(200, { "content-type": registry.contentType });
          return res.end(await registry.metrics());
        default:
          res.writeHead(404).end("not found\n");
      }
    } catch (err) {
      res.writeHead(500).end(`${(err as Error).message}\n`);
    }
  });
  await controlSocketFree(socketPath); // also makes its directory
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  listeners?.serve(src, registry);
  server.once("close", () => listeners?.close());
  return server;
}
