// weft node run --config FILE: the static-routes node. Creates or adopts the TUN,
// programs its routes (weft's protocol only) and forwards until SIGTERM, which
// leaves the TUN and the routes in place for the next start to adopt.
import type { Logger } from "pino";
import { parseCIDR, parseIPv4, formatIPv4 } from "../dataplane/addr.js";
import { Dataplane, NO_OFFLOADS } from "../dataplane/dataplane.js";
import { readDataPathEnv } from "./env.js";
import { FastPath } from "../dataplane/fastpath.js";
import { vtepMAC } from "../dataplane/vtep.js";
import { native } from "../native/index.js";
import * as kernel from "../native/iproute.js";
import { controlSocketFree, controlSocketPath, startControlServer } from "../control/server.js";
import { HttpListeners, type HttpEndpoints } from "../control/http.js";
import { OVERHEAD, type RemoteBlock } from "../routing/desired.js";
import { RouteOwner } from "../routing/owner.js";
import { removeWeftTable } from "../native/nft.js";
import { removeChains } from "../native/iptables.js";
import { ConfigError, loadStaticConfig, reloadedConfig, type StaticConfig } from "./config.js";

export interface Preflight {
  uplink: string;
  underlayMTU: number;
  tunnelMTU: number;
  /** Allowed but probably not meant (logged at start). */
  warnings: string[];
  localAddress: string;
  blocks: RemoteBlock[];
  /** Underlay gateway toward each directly routed node that is not on our subnet. */
  gateways: Map<string, string | undefined>;
}

/** Everything that can be checked before touching the host. Throws ConfigError. */
export async function preflight(cfg: StaticConfig, source: string): Promise<Preflight> {
  const localAddress = cfg.address.split("/")[0];
  const uplink = cfg.interface ?? (await kernel.interfaceWithAddress(localAddress));
  if (!uplink) {
    throw new ConfigError(`${source}: address: ${localAddress} is on no interface of this host; fix the address or set interface`);
  }
  const link = kernel.linkInfo(uplink);
  if (!link) throw new ConfigError(`${source}: interface: ${uplink} does not exist on this host`);
  const blocks: RemoteBlock[] = cfg.routes.map((r) => ({
    cidr: r.cidr,
    node: r.node,
    address: r.address,
    encapsulation: r.encapsulation ?? cfg.encapsulation,
    vtepMAC: r.vtepMAC,
  }));
  const encaps = new Set([cfg.encapsulation, ...blocks.map((b) => b.encapsulation)]);
  const overhead = Math.max(...[...encaps].map((e) => OVERHEAD[e]), OVERHEAD.IPIP);
  const tunnelMTU = cfg.mtu ?? link.mtu - overhead;
  const warnings: string[] = [];
  if (tunnelMTU > link.mtu - overhead) {
    warnings.push(`mtu ${tunnelMTU} leaves no room for the ${overhead}-byte encapsulation on ${uplink} (MTU ${link.mtu}): encapsulated packets over ${link.mtu - overhead} bytes get ICMP fragmentation-needed; ${link.mtu - overhead} (the default) fits`);
  }
  const gateways = new Map<string, string | undefined>();
  await kernel.learnGateways(blocks.filter((x) => x.encapsulation === "None").map((b) => b.address), gateways);
  return { uplink, underlayMTU: link.mtu, tunnelMTU, localAddress, blocks, gateways, warnings };
}

/** What both node modes share: the fast path, the data plane, the route owner, the control socket. */
export interface NodeBase {
  fp: FastPath;
  dp: Dataplane;
  owner: RouteOwner;
  mac: string;
}

export interface NodeBaseOptions {
  name: string;
  localAddress: string;
  uplink: string;
  underlayMTU: number;
  tunnelDevice: string;
  vtepMAC?: string;
  vni: number;
  vxlanPort: number;
  offloads: StaticConfig["offloads"];
  underlayGateway?: (address: string) => string | undefined;
}

export function startDataplane(o: NodeBaseOptions, log: Logger): NodeBase {
  if (kernel.moduleLoaded("ipip")) {
    log.warn("the kernel's ipip module is loaded: it also claims IP protocol 4 (tunl0); weft still receives IPIP on its raw socket, but remove the module (modprobe -r ipip) so only one of them handles it");
  }
  const mac = o.vtepMAC ?? vtepMAC(o.name);
  const fp = new FastPath();
  fp.configure({ localAddr: parseIPv4(o.localAddress)!, underlayMTU: o.underlayMTU, vni: o.vni, vxlanPort: o.vxlanPort, vtepMAC: mac });
  const env = readDataPathEnv(process.env, (sw) => log.warn(sw, `${sw.name} must be ${sw.expected}: using the default`));
  const dp = new Dataplane(fp, {
    tunName: o.tunnelDevice,
    underlayMTU: o.underlayMTU,
    bindAddress: o.localAddress,
    vxlanPort: o.vxlanPort,
    offloads: env.offloadsOff ? NO_OFFLOADS : o.offloads,
    vxlanSourcePorts: env.vxlanSourcePorts,
    batch: env.batch,
    rxThread: env.rxThread,
    busyPollMicros: env.busyPollMicros,
    stageTiming: env.stageTiming,
    log,
  });
  dp.start();
  kernel.setSysctl("net.ipv4.ip_forward", 1);
  tunnelSysctls(o.tunnelDevice);
  const owner = new RouteOwner(fp, { address: o.localAddress, tunnelDevice: o.tunnelDevice, uplink: o.uplink, underlayGateway: o.underlayGateway }, log);
  return { fp, dp, owner, mac };
}

function tunnelSysctls(dev: string): void {
  // ICMP errors weft writes into the TUN come from the node's own address.
  kernel.setSysctl(`net.ipv4.conf.${dev}.accept_local`, 1);
  kernel.setSysctl(`net.ipv4.conf.${dev}.rp_filter`, 0);
  kernel.setSysctlIfPresent(`net.ipv6.conf.${dev}.disable_ipv6`, 1);
}

/**
 * If the tunnel device is deleted under the running node (the kernel takes its routes
 * with it and the TUN fails), the node makes it again and restores every route with
 * restore(). If that fails the node exits with status 1, for its supervisor to restart.
 */
export function restoreTunnelIfDeleted(base: NodeBase, tunnelDevice: string, log: Logger, restore: () => Promise<unknown>): void {
  base.dp.onTunnelLost = () => {
    log.error({ tunnel: tunnelDevice }, `${tunnelDevice} was deleted while the node ran: creating it again and restoring its routes`);
    void (async () => {
      await base.dp.stop();
      base.dp.start();
      tunnelSysctls(tunnelDevice);
      await restore();
      log.info({ tunnel: tunnelDevice, routes: (await kernel.listWeftRoutes()).length }, `${tunnelDevice} restored`);
    })().catch((err: Error) => {
      log.fatal({ tunnel: tunnelDevice, err: err.message }, `could not recreate ${tunnelDevice}; exiting for the service manager to restart the node`);
      process.exit(1);
    });
  };
}

/**
 * The kernel removes every route through a device set down, weft's among them: through
 * the uplink (a direct or CrossSubnet node's routes to its subnet) and through weft0
 * (every tunnel route). The 30 s check would put them back up to 30 s later (a pod
 * reached no pod there meanwhile; 26 s measured). The kernel's changes to both links
 * are queued on a netlink socket and read every second, so a reset shorter than that
 * (down and up at once, as a NIC reset or `ip link set down; ip link set up` does) is
 * seen too: reading the state alone missed every such reset. `repair` runs when the
 * uplink is up again or was made anew, when someone else set weft0 down or changed its
 * MTU, and when an address was removed from it (weft0 deleted is restoreTunnelIfDeleted's).
 * An address removed from the uplink is onUplinkAddressRemoved's (the node's own may be gone).
 */
export function watchLinks(links: { uplink: string; tunnel: string; tunnelMTU: () => number; onUplinkAddressRemoved?: () => void; routesGoneWith?: (dev: string) => void }, log: Logger, repair: () => void): { stop(): void } {
  const { uplink, tunnel } = links;
  const unseen = "a reset shorter than a second goes unseen until the 30 s check";
  let was = kernel.linkInfo(uplink);
  let changes: kernel.LinkChanges | undefined;
  try {
    changes = new kernel.LinkChanges([uplink, tunnel]);
  } catch (err) {
    log.warn({ uplink, tunnel, err: (err as Error).message }, `cannot follow ${uplink}'s and ${tunnel}'s changes from the kernel: ${unseen}`);
  }
  let uplinkWentDown = false;
  let tunnelIndex = kernel.linkInfo(tunnel)?.ifindex;
  const read = (): { overflow: boolean; links: kernel.LinkChange[] } => {
    try {
      return changes?.read() ?? { overflow: false, links: [] };
    } catch (err) {
      log.warn({ uplink, tunnel, err: (err as Error).message }, `stopped following ${uplink}'s and ${tunnel}'s changes from the kernel: ${unseen}`);
      changes?.close();
      changes = undefined;
      return { overflow: false, links: [] };
    }
  };
  // Changes lost to an overflowed queue (hundreds of pods' veths at once) may have hidden
  // a reset: the check lists what is installed and puts back what is missing. At most one
  // such check every 5 s, said at most once a minute; nothing is blamed on anyone.
  let overflowCheckAt = -Infinity;
  let overflowSaidAt = -Infinity;
  let overflowsUnsaid = 0;
  let overflowPending = false;
  const timer = setInterval(() => {
    const {
      overflow,
      links: [up, tun],
    } = read();
    if (overflow) {
      overflowPending = true;
      overflowsUnsaid++;
    }
    if (up?.down) uplinkWentDown = true;
    // The kernel removes the routes through a device with its last address: not someone else's doing.
    if (up?.addressesRemoved) {
      links.routesGoneWith?.(uplink);
      links.onUplinkAddressRemoved?.();
    }
    const now = kernel.linkInfo(uplink);
    let repairing = false;
    if (now?.up && (uplinkWentDown || !was?.up || was.ifindex !== now.ifindex)) {
      log.info({ uplink }, `${uplink} is up again: putting back the routes the kernel removed with it`);
      links.routesGoneWith?.(uplink);
      uplinkWentDown = false;
      repairing = true;
    }
    // weft0's MTU, new pods' and the data path's buffers were sized from the uplink's at the
    // start; a smaller one is learned per node from the kernel's refusals, a larger one waits.
    if (now && was && now.mtu !== was.mtu) log.warn({ uplink, from: was.mtu, to: now.mtu }, `${uplink}'s MTU changed from ${was.mtu} to ${now.mtu}: weft0 and the data path keep the sizes they started with (a smaller path is learned from the kernel's refusals); restart the node to size them from the new MTU`);
    was = now;
    const t = tun && (tun.changes || tun.addressesRemoved) ? kernel.linkInfo(tunnel) : undefined;
    // A weft0 made anew is restoreTunnelIfDeleted's (it says so and restores it).
    if (t && t.ifindex !== tunnelIndex) tunnelIndex = t.ifindex;
    else if (t && tun) {
      const mtu = links.tunnelMTU();
      // weft never sets weft0 down, and sets its MTU and the MTU it reports together.
      const what = [tun.down || !t.up ? "set down" : "", mtu && t.mtu !== mtu ? `given MTU ${t.mtu}` : ""].filter(Boolean);
      if (tun.down || !t.up || tun.addressesRemoved) links.routesGoneWith?.(tunnel);
      if (what.length) log.warn({ tunnel, up: t.up, mtu: t.mtu }, `${tunnel} was ${what.join(" and ")} by someone else: putting back its state and the routes through it now`);
      // weft removes an address itself when the tunnel address moves: the check says whether it was someone else.
      else if (tun.addressesRemoved) log.info({ tunnel, addressesRemoved: tun.addressesRemoved }, `an address was removed from ${tunnel}: checking its address now`);
      repairing ||= what.length > 0 || tun.addressesRemoved > 0;
    }
    const at = performance.now();
    if (overflowPending && (repairing || at - overflowCheckAt >= 5000)) {
      if (at - overflowSaidAt >= 60_000) {
        log.info({ uplink, tunnel, overflows: overflowsUnsaid }, `the kernel announced interface changes faster than the node reads them (many interfaces changed at once, as when pods start or stop together): checking ${uplink}'s and ${tunnel}'s routes and state now`);
        overflowSaidAt = at;
        overflowsUnsaid = 0;
      }
      overflowPending = false;
      overflowCheckAt = at;
      repairing = true;
    }
    if (repairing) repair();
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      changes?.close();
    },
  };
}

export function fastRoutes(fp: FastPath, source: string): unknown[] {
  return fp.list().map((r) => ({ cidr: `${formatIPv4(r.prefix.addr)}/${r.prefix.len}`, nextHop: formatIPv4(r.nextHop), encap: ["none", "IPIP", "VXLAN"][r.encap], vtepMAC: r.vtepMAC, source }));
}

/** How long a stop may take before the node exits anyway. */
export const STOP_DEADLINE_MS = 10_000;

/**
 * Resolves on SIGTERM or SIGINT, after stopping the data plane (weft0 and routes stay).
 * A stop never hangs: a step that fails is logged and the rest still runs, a stop that
 * takes longer than STOP_DEADLINE_MS exits anyway (status 1), and a second signal exits
 * at once.
 */
export function untilSignal(base: Pick<NodeBase, "fp" | "dp">, log: Logger, onStop: () => void = () => {}, deadlineMs = STOP_DEADLINE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, "second signal while stopping: exiting now; weft0 and its routes stay");
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, counters: base.fp.counters() }, "stopping; weft0 and its routes stay for the next start");
      setTimeout(() => {
        log.error({ signal, deadlineMs }, "the stop did not finish in time: exiting anyway; weft0 and its routes stay");
        process.exit(1);
      }, deadlineMs).unref();
      try {
        onStop();
      } catch (err) {
        log.error({ err: (err as Error).message }, "a step of the stop failed; stopping the rest");
      }
      base.dp.stop().then(resolve, (err: Error) => {
        log.error({ err: err.message }, "stopping the data plane failed");
        resolve();
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

/**
 * A static node's ICMP errors (fragmentation needed, unreachable) go into the tunnel from
 * the node's address, which the kernel routes through the uplink: reverse-path filtering,
 * loose or strict (the larger of `all` and the device's applies), drops them. A node on a
 * datastore sends them from the tunnel's own address instead; a static node has none.
 */
export function filtersReversePath(all: string | undefined): boolean {
  return all === "1" || all === "2";
}

/** What a static node says at start when filtersReversePath(net.ipv4.conf.all.rp_filter). */
export function reversePathFilterWarning(all: string | undefined, tunnel: string, uplink: string): string | undefined {
  if (!filtersReversePath(all)) return undefined;
  const mode = all === "1" ? "strict, as hardening guides set it" : "loose, Ubuntu's default";
  return `reverse-path filtering (net.ipv4.conf.all.rp_filter = ${all}: ${mode}) drops the ICMP errors weft writes into ${tunnel} from this node's address, which the kernel routes through ${uplink}: pods do not learn a smaller path MTU (connections through such a path stall) or that a destination is unreachable. Set it to 0 (each interface's own rp_filter then applies; ${tunnel}'s is 0). A node on a datastore sends them from ${tunnel}'s tunnel address, which passes`;
}

/**
 * SIGHUP, as BIRD, FRR and GoBGP take it: reload what can be reloaded, keep running.
 * Without a handler Node.js exits on SIGHUP, which systemd counts as a clean stop and
 * does not restart: a `kill -HUP` stopped the node for good, with no log line.
 */
export function reloadOnHangup(log: Logger, reload: () => Promise<void>): { stop(): void } {
  let stopping = false;
  // The handler stays through the stop, so a SIGHUP then cannot cut it short.
  process.on("SIGHUP", () => {
    if (stopping) return void log.info("SIGHUP while stopping: nothing to reload");
    reload().catch((err: Error) => log.error({ err: err.message }, "SIGHUP: the reload failed; the node goes on as it was"));
  });
  return { stop: () => void (stopping = true) };
}

export async function runStaticNode(initial: StaticConfig, source: string, log: Logger, opts: { control?: string; http?: HttpEndpoints } = {}): Promise<void> {
  let cfg = initial;
  const control = opts.control ?? cfg.controlSocket ?? controlSocketPath(cfg.name);
  // Replaced whole by a reload of the file (SIGHUP): routes, their gateways, the MTU.
  let pre = await preflight(cfg, source);
  for (const w of pre.warnings) log.warn(w);
  await controlSocketFree(control);
  const listeners = await HttpListeners.open(opts.http ?? {});
  const local = parseCIDR(cfg.address, false)!;
  if (local.len === 32) {
    log.warn({ address: cfg.address }, "node address is a /32: no other node is ever in its subnet (CrossSubnet would encapsulate everything)");
  }
  const base = startDataplane(
    { name: cfg.name, localAddress: pre.localAddress, uplink: pre.uplink, underlayMTU: pre.underlayMTU, tunnelDevice: cfg.tunnelDevice, vtepMAC: cfg.vtepMAC, vni: cfg.vni, vxlanPort: cfg.vxlanPort, offloads: cfg.offloads, underlayGateway: (a) => pre.gateways.get(a) },
    log,
  );
  // One apply at a time: a reload never runs beside the 30 s check or a repair.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(step: () => Promise<T>): Promise<T> => {
    const done = queue.then(step, step);
    queue = done.catch(() => {});
    return done;
  };
  const applyFile = (verify = false) => serially(() => base.owner.apply({ remote: pre.blocks, tunnelMTU: pre.tunnelMTU, verify }));
  const result = await applyFile();
  const rpFilter = reversePathFilterWarning(kernel.sysctl("net.ipv4.conf.all.rp_filter"), cfg.tunnelDevice, pre.uplink);
  if (rpFilter) log.warn({ sysctl: "net.ipv4.conf.all.rp_filter" }, rpFilter);
  restoreTunnelIfDeleted(base, cfg.tunnelDevice, log, () => applyFile());
  // Every 30 s: put back what someone else removed (a route, weft0 set down).
  const check = () => applyFile(true).catch((err: Error) => log.error({ err: err.message }, "periodic route check failed"));
  const periodic = setInterval(check, 30_000);
  const linkWatch = watchLinks({ uplink: pre.uplink, tunnel: cfg.tunnelDevice, tunnelMTU: () => base.owner.tunnelMTU, routesGoneWith: (dev) => base.owner.routesGoneWith(dev) }, log, check);
  log.info({ node: cfg.name, address: cfg.address, ...base.dp.settings(), uplink: pre.uplink, tunnel: cfg.tunnelDevice, tunnelMTU: pre.tunnelMTU, vtepMAC: base.mac, routes: pre.blocks.length, ...result }, "node running");
  // SIGHUP (systemctl reload weft-node): the file's routes, encapsulation and mtu apply
  // at once; a file that does not load changes nothing; other settings take a restart.
  const hangup = reloadOnHangup(log, () =>
    serially(async () => {
      let next: StaticConfig;
      let needRestart: string[];
      let nextPre: Preflight;
      try {
        ({ config: next, needRestart } = reloadedConfig(cfg, loadStaticConfig(source), source));
        nextPre = await preflight(next, source);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        log.error({ file: source, err: err.message }, "SIGHUP: the file does not load; its routes stay as they were");
        return;
      }
      for (const w of nextPre.warnings) log.warn(w);
      if (needRestart.length) log.warn({ file: source, fields: needRestart }, `SIGHUP: ${needRestart.join(", ")} changed in the file: only a restart takes ${needRestart.length > 1 ? "them" : "it"} (systemctl restart weft-node); the node goes on with the old ${needRestart.length > 1 ? "values" : "value"}`);
      const was = { routes: pre.blocks.length, tunnelMTU: pre.tunnelMTU };
      cfg = next;
      pre = nextPre;
      const applied = await base.owner.apply({ remote: pre.blocks, tunnelMTU: pre.tunnelMTU });
      log.info({ file: source, routes: pre.blocks.length, routesBefore: was.routes, tunnelMTU: pre.tunnelMTU, tunnelMTUBefore: was.tunnelMTU, ...applied }, "SIGHUP: reloaded the file's routes");
    }),
  );

  const started = new Date().toISOString();
  const server = await startControlServer(control, {
    status: () => ({
      name: cfg.name,
      address: cfg.address,
      mode: "static",
      encapsulation: cfg.encapsulation,
      tunnel: { device: cfg.tunnelDevice, mtu: pre.tunnelMTU, vtepMAC: base.mac },
      ...base.dp.settings(),
      uplink: { device: pre.uplink, mtu: pre.underlayMTU },
      pathMTUs: base.dp.pathMtus(),
      routes: base.owner.routeCounts,
      started,
      counters: base.fp.counters(),
    }),
    routes: () => fastRoutes(base.fp, "static"),
    counters: () => base.fp.counters(),
  }, listeners);
  logServing(listeners, log);
  await untilSignal(base, log, () => {
    hangup.stop();
    clearInterval(periodic);
    linkWatch.stop();
    server.close();
  });
}

/** One log line naming the HTTP listeners, when there are any. */
export function logServing(listeners: HttpListeners, log: Logger): void {
  if (listeners.urls.length) log.info({ urls: listeners.urls }, "serving metrics and health over HTTP");
}

/** weft node reset: removes every route with weft's protocol, the tunnel device, the
 * natOutgoing table and the iptables chains. */
export async function resetNode(tunnelDevice: string, log: Logger): Promise<void> {
  // A running node would put it all back (it repairs what others remove): stop it first.
  const holder = kernel.tunHolder(tunnelDevice);
  if (holder) throw new ConfigError(`${tunnelDevice} is in use by process ${holder.pid} (${holder.command.slice(0, 120)}): stop that node first; reset is for a host whose node has stopped`);
  const routes = await kernel.listWeftRoutes();
  await kernel.changeRoutes([], routes);
  await removeWeftTable().catch(() => {}); // no table is fine
  await removeChains();
  let tun = false;
  if (kernel.linkInfo(tunnelDevice)) {
    native().tunDelete(tunnelDevice);
    tun = true;
  }
  log.info({ routesRemoved: routes.length, tunnelRemoved: tun ? tunnelDevice : null }, "reset done");
}
