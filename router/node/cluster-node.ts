// weft node run --datastore URL: registers the Node, claims its tunnel address (and so
// its first block), and keeps the route owner in step with the datastore through a
// watch. Without BGP, routes come from block affinities and Node resources (Calico's
// VXLAN backend). The data plane never waits on the datastore: when it is gone,
// forwarding goes on with the last state and the node reconnects by itself.
import { lookup } from "node:dns/promises";
import { createConnection } from "node:net";
import type { Logger } from "pino";
import { contains, formatCIDR, parseCIDR, parseIPv4, within } from "../dataplane/addr.js";
import { vtepMAC as deriveMAC } from "../dataplane/vtep.js";
import { VXLAN_PORT } from "../dataplane/dataplane.js";
import * as kernel from "../native/iproute.js";
import { DEFAULT_TUNNEL_MARK } from "../native/nft.js";
import { controlSocketFree, controlSocketPath, Listed, startControlServer } from "../control/server.js";
import { HttpListeners, type HttpEndpoints } from "../control/http.js";
import { datastoreReason, misconfigured, openDatastore, unreachable, unreadableRecords, WEFT_PREFIX, ConflictError, type Datastore, type Watch } from "../store/store.js";
import { resourceKey, Resources, UnreadableRecordError } from "../resources/client.js";
import { nodeName } from "../resources/validate.js";
import { selectorOrError, SelectorError } from "../resources/selector.js";
import { API_VERSION, nodeIPv4, nodeTunnelAddress, withTunnelFields, type BGPConfiguration, type BGPFilter, type BGPPeer, type IPPool, type NodeResource } from "../resources/kinds.js";
import { Speaker, type PeerStatus } from "../bgp/speaker.js";
import type { Path } from "../bgp/rib.js";
import type { Attributes } from "../bgp/wire.js";
import { bgpConfigFor, bgpLogLevel, bgpSettings, peersFor, serviceRanges } from "../bgp/peers.js";
import { advertisedCommunities, communityTexts, unresolvedCommunities } from "../bgp/communities.js";
import { ipamFor, IPAMError, BLOCK_PREFIX, TUNNEL_HANDLE_PREFIX, nodeBlockUsage, parseBlocks } from "../ipam/ipam.js";
import { bgpExports, bgpPassesOn, clusterState, poolEncapsulations, remoteFromBgp, tunnelMTU, withRestartSeed } from "../routing/cluster.js";
import { OVERHEAD, type RemoteBlock } from "../routing/desired.js";
import { nextTurn } from "../routing/owner.js";
import { ConfigError } from "./config.js";
import { detectNodeAddress, type HostView } from "./autodetect.js";
import { followNodeAddress } from "./address-gone.js";
import { defaultPool } from "./default-pool.js";
import { fastRoutes, logServing, reloadOnHangup, restoreTunnelIfDeleted, startDataplane, untilSignal, watchLinks } from "./run.js";

/** A sync whose reads went fine but whose apply to the host failed (not the datastore's fault). */
class HostApplyError extends Error {}

export interface ClusterNodeOptions {
  datastore: string;
  /** etcd: compact its history this often, keeping one period of it (0: never; default 600 s, Calico's COMPACTION_PERIOD). */
  compactionPeriodS?: number;
  /** bgp (default): routes are learned over BGP; vxlan: BGP off, routes from the datastore. */
  backend?: "bgp" | "vxlan";
  name?: string;
  /** Where name came from, for messages (--name, or Calico's NODENAME). */
  nameFrom?: string;
  /** An address (A/P, or bare), or "autodetect". */
  ip?: string;
  /** Where ip came from, for messages (--ip, or Calico's IP). */
  ipFrom?: string;
  interface?: string;
  /** Calico's IP_AUTODETECTION_METHOD (first-found, can-reach=, interface=, skip-interface=, cidr=). */
  autodetectionMethod?: string;
  methodFrom?: string;
  control?: string;
  /** Metrics and health over TCP (off when empty). */
  http?: HttpEndpoints;
  tunnelDevice?: string;
  /** This node's AS number (Calico's AS): kept in its Node; without it, the Node's or the cluster's. */
  as?: number;
  /** Tunnel MTUs set by hand (Calico's FELIX_IPINIPMTU, FELIX_VXLANMTU); default: the uplink's minus the overhead. */
  ipipMTU?: number;
  vxlanMTU?: number;
  /** The packet mark bit on IPIP and VXLAN from the nodes, for WEFT-INPUT (the lowest of Calico's iptablesMarkMask). */
  tunnelMark?: number;
  /** Where Calico's CALICO_IPV4POOL_* and NO_DEFAULT_POOLS are read (process.env). */
  env?: NodeJS.ProcessEnv;
}

/** What address detection needs of this host, from iproute2 and the resolver. */
const HOST: HostView = {
  interfaces: kernel.interfaceAddresses,
  defaultRouteDevice: kernel.defaultRouteDevice,
  routeGet: kernel.routeGet,
  resolve: async (host) => (await lookup(host, { family: 4 })).address,
};

/** A BGP path as weft node routes prints it. */
const attrsView = (a: Attributes) => ({ nextHop: a.nextHop, asPath: (a.asPath ?? []).flatMap((seg) => seg.asns), localPref: a.localPref, communities: communityTexts(a) });
const pathView = (p: Path) => ({ cidr: p.prefix, peer: p.peerAddress, ...attrsView(p.attrs) });

export async function runClusterNode(opts: ClusterNodeOptions, log: Logger): Promise<void> {
  let name: string;
  try {
    name = nodeName(opts.name);
  } catch (err) {
    throw new ConfigError(`${opts.name === undefined ? "node name (the hostname; pass --name)" : (opts.nameFrom ?? "--name")}: ${(err as Error).message}`);
  }
  const tunnelDevice = opts.tunnelDevice ?? "weft0";
  // The interfaces, read once: address detection and the first pool's choice both look at them.
  const interfaces = await HOST.interfaces();
  // Asked again (the host as it is then) when the node's address leaves the host.
  const addressRequest = { ip: opts.ip, ipFrom: opts.ipFrom, interface: opts.interface, method: opts.autodetectionMethod, methodFrom: opts.methodFrom, tunnelDevice };
  const { cidr, uplink, how } = await detectNodeAddress(addressRequest, { ...HOST, interfaces: async () => interfaces });
  // Checked at every start, though used only when the datastore has no pool.
  const firstPool = defaultPool(opts.env ?? process.env, interfaces.filter((i) => i.name !== tunnelDevice).flatMap((i) => i.addresses));
  const link = kernel.linkInfo(uplink);
  if (!link) throw new ConfigError(`--interface: ${uplink} does not exist on this host`);
  log.info({ address: cidr, interface: uplink, how }, "node address");
  for (const [name, set] of [["IPIP", opts.ipipMTU], ["VXLAN", opts.vxlanMTU]] as const) {
    const overhead = OVERHEAD[name];
    if (set !== undefined && set > link.mtu - overhead) log.warn({ encapsulation: name, mtu: set, uplink, uplinkMTU: link.mtu }, `${name} MTU ${set} leaves no room for the ${overhead}-byte encapsulation on ${uplink} (MTU ${link.mtu}): encapsulated packets over ${link.mtu - overhead} bytes will not fit the uplink; ${link.mtu - overhead} (the default) fits`);
  }
  if (cidr.endsWith("/32")) log.warn({ address: cidr }, "node address is a /32: no other node is ever in its subnet, so CrossSubnet pools encapsulate everything; register the real prefix with --ip");
  const localAddress = cidr.split("/")[0];
  const control = opts.control ?? controlSocketPath(name);
  await controlSocketFree(control);
  const listeners = await HttpListeners.open(opts.http ?? {});
  let store: Datastore;
  try {
    store = await openDatastore(opts.datastore);
  } catch (err) {
    throw new ConfigError(`--datastore: ${(err as Error).message}`);
  }
  store.notify = (message, fields) => log.info({ datastore: store.description, ...fields }, message);
  const res = new Resources(store);
  // A node may start before its datastore (boot order): wait for it, saying so, rather
  // than exit. Nothing on the host has been touched yet, so a signal just ends the wait.
  for (let delay = 1000; ; delay = Math.min(delay * 2, 5000)) {
    try {
      await res.list("IPPool");
      break;
    } catch (err) {
      // Certificates, users and roles do not fix themselves: say so and stop.
      const bad = misconfigured(err);
      if (bad) throw new ConfigError(`--datastore ${opts.datastore}: ${bad}`);
      const why = unreachable(err);
      if (!why) throw err;
      log.warn({ datastore: opts.datastore, reason: why, retryInMs: delay }, "the datastore does not answer yet; waiting for it");
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  const ipam = ipamFor(store, res);
  const mac = deriveMAC(name);

  // One address, one node (as Calico checks at start): a host renamed, or a copied
  // config, would otherwise peer with itself and leave the old Node's block unrouted.
  const backend = opts.backend ?? "bgp";
  const registered = await res.list<NodeResource>("Node");
  const clash = registered.find((n) => n.metadata.name !== name && nodeIPv4(n)?.address === localAddress);
  if (clash) {
    throw new ConfigError(`node "${clash.metadata.name}" is already using the IPv4 address ${localAddress}; if that node is gone (a renamed host), delete it with "weft delete node ${clash.metadata.name}", else give this node its own address (--ip)`);
  }
  // One name, one host. A Node of this name with another address is a host whose address
  // changed (nothing of it answers there any more), or another host with the same name
  // (a machine cloned with its hostname): taking over that one's Node would leave both
  // on one block, giving pods the same addresses, and its routes gone. Its BGP port tells.
  const sameName = registered.find((n) => n.metadata.name === name);
  const priorAddress = sameName && nodeIPv4(sameName)?.address;
  if (backend === "bgp" && priorAddress && priorAddress !== localAddress) {
    const port = bgpSettings(await res.list<BGPConfiguration>("BGPConfiguration"), name).listenPort;
    if (await answersTcp(priorAddress, port, 2000)) {
      throw new ConfigError(`node "${name}" is running on another host (${priorAddress}, whose BGP port ${port} answers): two hosts have the same node name, as a machine cloned with its hostname does; give this one its own (--name or NODENAME), or stop that one first`);
    }
    log.info({ node: name, was: priorAddress, now: localAddress }, "this node's address changed (nothing answers on the old one): taking the Node over");
  }

  // Register: a default pool if there is none (as Calico does), our Node, a tunnel address.
  if (firstPool && (await res.list("IPPool")).length === 0) {
    try {
      await res.apply([firstPool], "create");
      log.info({ pool: firstPool.spec }, "created the default IPv4 pool");
    } catch (err) {
      if (!/already exists/.test(String(err)) && !(err instanceof ConflictError)) throw err;
    }
  }
  // Calico's default pool is 192.168.0.0/16, which many hosts' networks are in.
  const startPools = await res.list<IPPool>("IPPool");
  for (const p of startPools) {
    const c = parseCIDR(p.spec.cidr, true);
    if (c && contains(c, parseIPv4(localAddress)!)) {
      log.error({ pool: p.metadata.name, cidr: p.spec.cidr, address: localAddress }, "this node's address is inside an IP pool: pods may be given addresses of the hosts' network, and blocks holding a node's address are not routed; use a pool outside the hosts' network");
    }
  }
  // Our own Node is ours to write: one that cannot be read is registered anew over it.
  const existing = await res.get<NodeResource>("Node", name).catch((err: unknown) => {
    if (!(err instanceof UnreadableRecordError)) throw err;
    log.warn({ node: name, err: err.message }, "this node's Node record cannot be read: registering it anew (labels and settings in it are lost)");
    return undefined;
  });
  const before = existing && nodeIPv4(existing)?.cidr;
  if (before && before !== cidr) {
    log.warn({ node: name, registered: before, now: cidr }, "this Node was registered with another address: updating it; if another host runs a node of this name, give each its own (--name)");
  }
  // A tunnel address (and with it a block) from a pool that gives this node tunnel
  // addresses. With none (every pool disabled, or selecting other nodes) the node runs
  // without one and claims it once a pool allows, as Calico's node does.
  const tunnelHandle = `${TUNNEL_HANDLE_PREFIX}${name}`;
  const claimTunnel = async (labels?: Record<string, string>): Promise<string | undefined> => {
    try {
      return (await ipam.assign({ node: name, handle: tunnelHandle, labels, use: "Tunnel" })).address;
    } catch (err) {
      if (err instanceof IPAMError) return undefined;
      throw err;
    }
  };
  let tunnelAddr: string | undefined = (await ipam.addressesOf(tunnelHandle))[0] ?? (await claimTunnel(existing?.metadata.labels));
  if (!tunnelAddr) log.warn({ node: name }, "no enabled IP pool gives this node a tunnel address (all disabled, or none selects it): running without one until a pool does");
  const nodeRes: NodeResource = {
    apiVersion: API_VERSION,
    kind: "Node",
    metadata: { name, labels: existing?.metadata.labels, annotations: existing?.metadata.annotations },
    spec: withTunnelFields({ ...existing?.spec, bgp: { ...existing?.spec.bgp, ipv4Address: cidr, ...(opts.as !== undefined ? { asNumber: opts.as } : {}) } }, tunnelAddr, mac, poolEncapsulations(startPools)),
  };
  if (!nodeRes.metadata.labels) delete nodeRes.metadata.labels;
  if (!nodeRes.metadata.annotations) delete nodeRes.metadata.annotations;
  await res.apply([nodeRes]);

  // BGP: the speaker listens before the first sync; restarting = routes survived a restart.
  // Durations run on the monotonic clock: the wall clock may be stepped (NTP at boot, a
  // VM resumed), and a day's step must not end a graceful restart early or keep it a day.
  const startedAt = performance.now();
  let speaker: Speaker | undefined;
  // The speaker's lines follow BGPConfiguration logSeverityScreen (else the node's level).
  const bgpLog = log.child({ component: "bgp" });
  if (backend === "bgp") {
    const settings = bgpSettings(await res.list<BGPConfiguration>("BGPConfiguration"), name);
    const restarting = (await kernel.listWeftRoutes()).length > 0;
    speaker = new Speaker(
      { as: nodeRes.spec.bgp?.asNumber ?? settings.as, routerId: localAddress, holdTime: 90, restartTime: settings.restartTime, restarting, localAddress, listenPort: settings.listenPort, listenAddress: settings.bindNodeIP ? localAddress : undefined, clusterId: nodeRes.spec.bgp?.routeReflectorClusterID },
      bgpLog,
    );
    try {
      await speaker.listen();
    } catch (err) {
      throw new ConfigError(`BGP: cannot listen on ${localAddress}:${settings.listenPort} (${(err as Error).message}); is another BGP daemon running here?`);
    }
    if (restarting) log.info({ restartTime: settings.restartTime }, "restarting with routes in place: graceful restart, keeping them until peers have sent End-of-RIB");
  }
  let meshWarned = false;
  let verifyNext = false;
  /** Peers left out at the last sync, and why (logged when they change; in node status). */
  let peerProblems: string[] = [];
  let communitiesWarned = "";
  /** This node's blocks and their addresses, at the last sync (metrics). */
  let ipamUsage: ReturnType<typeof nodeBlockUsage> = [];
  let poolProblems = "";

  // Underlay gateways toward next hops routed without encapsulation, looked up once each.
  const gateways = new Map<string, string | undefined>();
  const base = startDataplane({ name, localAddress, uplink, underlayMTU: link.mtu, tunnelDevice, vtepMAC: mac, vni: 4096, vxlanPort: VXLAN_PORT, offloads: { tso: true, gro: true, udpGSO: true, udpGRO: true }, underlayGateway: (a) => gateways.get(a) }, log);

  let revision = 0;
  let watch: Watch | undefined;
  let healthy = true;
  // Why the datastore was last away: said by `weft node status` while it is.
  let problem = { reason: "", refused: false };
  let pending: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  let synced = false;
  /** Remote routes at the last sync. */
  let lastRemote = 0;
  /** What the speaker's exports were made from, at the last sync. */
  let lastExports = "";
  let applyFailure = "";
  let unreadableSeen = "[]";

  const readCluster = () => Promise.all([res.listAt<IPPool>("IPPool"), res.listAt<NodeResource>("Node"), store.list(BLOCK_PREFIX), res.listAt<BGPConfiguration>("BGPConfiguration"), res.listAt<BGPPeer>("BGPPeer"), res.listAt<BGPFilter>("BGPFilter")]);
  /** The cluster as last read. A sync re-reads it only when the datastore changed (a
   * watch event), at the 30 s check and after an outage (`stale`); a sync for a BGP
   * change uses it as it is, so BGP's routes are applied while the datastore is away
   * (as Calico's BIRD goes on routing without its datastore). */
  let cluster: Awaited<ReturnType<typeof readCluster>> | undefined;
  let stale = true;
  /** Successful reads so far; `answered`: the probe heard the datastore again. */
  let reads = 0;
  let answered = false;

  // Reads the cluster view if it changed, and hands the desired state to the route owner.
  // If the read fails, BGP's routes are still applied on the view last read, then the
  // read's error is thrown (the caller says the datastore is unreachable).
  const sync = async (): Promise<void> => {
    let readError: unknown;
    let fresh = false;
    // While the datastore is away only the probe's go-ahead reads it: a read would wait
    // out its deadline, and BGP's changes with it.
    if (!cluster || (stale && (healthy || answered))) {
      answered = false;
      try {
        cluster = await readCluster();
        stale = false;
        fresh = true;
        reads++;
      } catch (err) {
        if (!cluster || !speaker) throw err;
        readError = err;
      }
    }
    const [poolList, nodeList, blocks, configList, peerList, filterList] = cluster;
    // The lists are separate reads and another node may write between them: watch from
    // the oldest, so a change one list missed still arrives as an event. (Watching from
    // the last one lost a node registered in between until the next full resync.)
    revision = Math.max(revision, Math.min(poolList.revision, nodeList.revision, blocks.revision, configList.revision, peerList.revision, filterList.revision));
    const [pools, nodes, configs, bgpPeers, bgpFilters] = [poolList.items, nodeList.items, configList.items, peerList.items, filterList.items];
    // Our Node deleted while we run ("weft delete node" on a live node): register again,
    // with a tunnel address again if that went with it, rather than drop out of the mesh.
    const self = nodes.find((n) => n.metadata.name === name);
    if (!self) {
      // Gone from a view not read just now: read again first.
      if (!fresh) {
        stale = true;
        if (readError) throw readError;
        return schedule();
      }
      stale = true;
      if (!(await ipam.addressesOf(tunnelHandle))[0]) tunnelAddr = await claimTunnel(nodeRes.metadata.labels);
      // Read before the apply, which forgets a record it writes over.
      const unreadable = unreadableRecords.get(resourceKey("Node", name));
      await res.apply([{ ...nodeRes, spec: withTunnelFields(nodeRes.spec, tunnelAddr, mac, poolEncapsulations(pools)) }]);
      log.warn({ node: name, tunnelAddress: tunnelAddr ?? null, ...(unreadable ? { unreadable } : {}) }, unreadable ? "this node's Node record cannot be read (written around weft): registered it again over it" : "this node's Node resource was deleted while it runs: registered it again");
      schedule();
      return;
    }
    // The tunnel address and the Node's fields follow the datastore: checked when it was
    // read just now (they write to it, and a sync for a BGP change reads nothing).
    const was = tunnelAddr;
    if (fresh && !was) {
      tunnelAddr = await claimTunnel(self.metadata.labels);
      if (tunnelAddr) log.info({ tunnelAddress: tunnelAddr }, "claimed a tunnel address: a pool now gives this node one");
    } else if (fresh && was) {
      tunnelAddr = await ipam.reconcileTunnel(name, self.metadata.labels ?? {}, was);
      if (tunnelAddr !== was) log.warn({ from: was, to: tunnelAddr ?? null }, tunnelAddr ? "tunnel address moved: its pool no longer gives this node tunnel addresses (disabled, deleted, or not selecting it)" : "tunnel address given up: its pool was deleted and no pool gives this node a new one");
    }
    // Our Node says what this node uses: an apply of a Node manifest without these
    // fields (or with another MAC) would leave the other nodes with a wrong picture.
    // They also follow the pools' encapsulation (IPIP's field, VXLAN's, or both).
    const enc = poolEncapsulations(pools);
    const wantSpec = withTunnelFields(self.spec, tunnelAddr, mac, enc);
    const tunnelFields = (spec: NodeResource["spec"]) => ({ ipv4IPIPTunnelAddr: spec.bgp?.ipv4IPIPTunnelAddr ?? null, ipv4VXLANTunnelAddr: spec.ipv4VXLANTunnelAddr ?? null, vxlanTunnelMACAddr: spec.vxlanTunnelMACAddr ?? null });
    const [found, using] = [tunnelFields(self.spec), tunnelFields(wantSpec)];
    if (fresh && JSON.stringify(found) !== JSON.stringify(using)) {
      // Moved to another field by a pool change is expected; anything else was done to it.
      const lost = nodeTunnelAddress(self) !== tunnelAddr || (found.vxlanTunnelMACAddr ?? mac) !== mac || (found.ipv4VXLANTunnelAddr !== null && using.vxlanTunnelMACAddr !== null && found.vxlanTunnelMACAddr !== mac);
      if (tunnelAddr === was && lost) log.warn({ found, using }, "this node's Node resource lost its tunnel address or VTEP MAC, or was given ones the node does not use: set back");
      else if (tunnelAddr === was) log.info({ found, using, pools: enc }, "the Node's tunnel fields follow the pools' encapsulation");
      // A compare-and-swap on the version read: a label or patch written meanwhile is
      // not overwritten; the next sync reads it and tries again.
      stale = true;
      try {
        await res.apply([{ ...self, spec: wantSpec }]);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      schedule();
      return;
    }
    const view = { pools, nodes, blocks: parseBlocks(blocks.items) };
    ipamUsage = nodeBlockUsage(name, view.blocks);
    // A pool whose nodeSelector does not parse (written around the validator) selects no node.
    const badSelectors = pools.flatMap((p) => {
      const sel = selectorOrError(p.spec.nodeSelector);
      return sel instanceof SelectorError ? [`IPPool(${p.metadata.name}): ${sel.message}`] : [];
    });
    if (badSelectors.join("\n") !== poolProblems) for (const p of badSelectors) log.error(`${p}; it selects no node: no address, block or tunnel address comes from it`);
    poolProblems = badSelectors.join("\n");
    const unreadable = JSON.stringify([...unreadableRecords]);
    if (unreadable !== unreadableSeen) {
      if (unreadableRecords.size) log.warn({ records: Object.fromEntries(unreadableRecords) }, "datastore records weft cannot read are skipped (written around weft: a hand edit, another tool?): fix or delete them");
      unreadableSeen = unreadable;
    }
    const state = clusterState(name, view);
    let remote = state.remote;
    let keepRemovals = false;
    if (speaker) {
      const settings = bgpSettings(configs, name);
      bgpLog.level = bgpLogLevel(configs, name) ?? log.level;
      // Our own AS, cluster ID and port follow the datastore while we run.
      const changed = await speaker.reconfigure({
        as: self.spec.bgp?.asNumber ?? settings.as,
        clusterId: self.spec.bgp?.routeReflectorClusterID,
        listenPort: settings.listenPort,
        listenAddress: settings.bindNodeIP ? localAddress : undefined,
        restartTime: settings.restartTime,
      });
      if (changed.length) log.info({ changed, as: speaker.cfg.as, clusterId: speaker.cfg.clusterId ?? null, listenPort: speaker.port, listenAddress: speaker.cfg.listenAddress ?? "0.0.0.0" }, "BGP settings changed");
      const plan = peersFor(name, nodes, bgpPeers, settings, { filters: bgpFilters });
      if (plan.problems.join("\n") !== peerProblems.join("\n")) for (const p of plan.problems) log.error(p);
      peerProblems = plan.problems;
      // Users trip over turning the mesh off before reflector sessions are up: keep it until one is.
      const otherUp = speaker.status().some((p) => p.type !== "node-to-node mesh" && p.state === "up");
      const keepMesh = !settings.meshEnabled && !otherUp && plan.mesh.length > 0;
      if (keepMesh && !meshWarned) log.warn({ reflectorsOrPeers: plan.other.map((p) => p.address) }, "nodeToNodeMeshEnabled is false but no route reflector or global peer session is Established yet: keeping the node-to-node mesh until one is, or every route would be lost");
      meshWarned = keepMesh;
      speaker.setPeers([...(settings.meshEnabled || keepMesh ? plan.mesh : []), ...plan.other]);
      const bgpConfig = bgpConfigFor(configs, name);
      // A name in this node's own advertisements that the default does not define: said once, not sent.
      const unresolved = unresolvedCommunities(bgpConfig).join(", ");
      if (unresolved && unresolved !== communitiesWarned) log.warn({ communities: unresolved }, `prefixAdvertisements name communities that BGPConfiguration(default) does not define; routes go out without them`);
      communitiesWarned = unresolved;
      // Service ranges: announced by every node, never programmed from what peers announce.
      const services = serviceRanges(bgpConfig).map((c) => parseCIDR(c)!);
      const isService = (cidr: string) => services.some((s) => within(parseCIDR(cidr, false)!, s));
      // Only when what it depends on changed: each call re-checks every route for every peer.
      const exports = [...bgpExports(name, view), ...services.map(formatCIDR)];
      const exportsKey = JSON.stringify([exports, bgpConfig?.prefixAdvertisements, bgpConfig?.communities, view.pools.map((p) => [p.spec.cidr, p.spec.disableBGPExport])]);
      if (exportsKey !== lastExports) speaker.setExports(exports, advertisedCommunities(bgpConfig), bgpPassesOn(view));
      lastExports = exportsKey;
      remote = remoteFromBgp(name, view, speaker.rib.bestPaths().filter((p) => !isService(p.prefix)).map((p) => ({ prefix: p.prefix, nextHop: p.attrs.nextHop ?? p.peerAddress })));
      // BGPPeer reachableBy: the route to the peer is pinned through its gateway, whatever peers announce for that address.
      const pins = plan.pinned.map((p): RemoteBlock => ({ cidr: `${p.address}/32`, node: `BGPPeer(${p.bgpPeer})`, address: p.via, encapsulation: "None", external: true, pinned: true }));
      remote = [...pins, ...remote.filter((r) => !pins.some((p) => p.cidr === r.cidr))];
      // Graceful restart (RFC 4724): started with our routes in place, we only add until
      // every peer is back and has sent End-of-RIB, or the restart time has passed. Then
      // the restart is over: stale routes go, and our OPENs stop saying "restarting".
      if (speaker.cfg.restarting && (speaker.converged || performance.now() - startedAt >= settings.restartTime * 1000)) {
        speaker.cfg.restarting = false;
        log.info({ converged: speaker.converged, afterMs: Math.round(performance.now() - startedAt) }, "graceful restart done: every peer sent End-of-RIB, or the restart time passed");
      }
      keepRemovals = speaker.cfg.restarting;
      if (keepRemovals) remote = withRestartSeed(remote, state.remote, view.pools);
      if (keepRemovals) schedule(1000);
    }
    // Not at the first sync: until it, the fast path is empty and a packet read would be answered "unreachable".
    if (synced) await nextTurn();
    await kernel.learnGateways(remote.filter((x) => x.encapsulation === "None").map((r) => r.address), gateways);
    const verify = verifyNext;
    verifyNext = false;
    let result: Awaited<ReturnType<typeof base.owner.apply>>;
    try {
      result = await base.owner.apply({ remote, localBlocks: state.localBlocks, tunnelMTU: tunnelMTU(link.mtu, state.encapsulations, { ipip: opts.ipipMTU, vxlan: opts.vxlanMTU }), tunnelAddress: tunnelAddr ?? null, nat: { masqPools: state.masqPools, allPools: state.allPools }, hostFirewall: { vxlanPort: VXLAN_PORT, mark: opts.tunnelMark ?? DEFAULT_TUNNEL_MARK }, keepRemovals, verify });
    } catch (err) {
      throw new HostApplyError((err as Error).message);
    }
    if (applyFailure) log.info("routes applied again after the failure above");
    applyFailure = "";
    // Said when something changed (not found by building a JSON of every remote route at each sync: 100,000 strings with a peer's full table).
    if (!synced || result.changed || result.removed || result.fastChanged || remote.length !== lastRemote) log.info({ revision, remoteBlocks: remote.length, localBlocks: state.localBlocks, ...result }, readError ? "routes in sync with BGP (the datastore does not answer: with the cluster as last read)" : backend === "bgp" ? "routes in sync with the datastore and BGP" : "in sync with the datastore");
    synced = true;
    lastRemote = remote.length;
    if (readError) throw readError;
  };
  // One sync waiting at most: it reads the datastore and the RIB when it starts, so it
  // covers every change until then. (Chaining one per timer queued a sync every 20 ms
  // while a slow one ran: a peer's 100,000 routes left minutes of them.)
  let queued = false;
  // When the last sync took long (a peer's table of 100,000 routes: ~0.4 s), the next
  // waits twice that after it ended, so that a route flapping a few times a second keeps
  // the node syncing a third of the time at most (it was 80% of a CPU, pods' pings
  // held up to 0.4 s); a small table's syncs take milliseconds and wait as before.
  // The 30 s check's sync, which lists what is installed, comes once: it sets no wait
  // (a change after it waited up to 2 s more).
  let syncEnded = 0;
  let syncTook = 0;
  const runQueued = async () => {
    // (At most 2 s: a sync that waited out a datastore's timeout is not slow work.)
    const rest = Math.min(syncEnded + 2 * syncTook - performance.now(), 2000);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    queued = false;
    const t0 = performance.now();
    const checking = verifyNext;
    await resyncAndWatch();
    syncEnded = performance.now();
    if (!checking) syncTook = syncEnded - t0;
  };
  const schedule = (delay = 30) => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      if (queued) return;
      queued = true;
      running = running.then(runQueued, runQueued);
    }, delay);
  };
  // Resync, then (re)watch from the revision we read. While the datastore does not
  // answer, a probe outside the sync queue asks it again with backoff (syncs for BGP's
  // changes go on meanwhile, from the cluster as last read); once it answers, a sync
  // reads everything and watches again.
  let backoff = 500;
  let probe: NodeJS.Timeout | undefined;
  const lost = (err: Error) => {
    const was = healthy ? undefined : problem.reason;
    problem = { reason: datastoreReason(err), refused: misconfigured(err) !== undefined };
    // A refusal (a user, a role, a certificate) is what an operator must fix: said once it is known.
    if (problem.refused && problem.reason !== was) log.warn({ datastore: store.description, err: problem.reason }, "the datastore refuses this node; it keeps asking (forwarding continues with the last state)");
    // A watch that fell behind the history (etcd compacted it; SQLite's log moved on) is no outage: read everything again.
    else if (healthy && /fell behind/.test(err.message)) log.info({ datastore: store.description, err: err.message }, "the watch fell behind the datastore's history: reading everything again");
    else if (healthy) log.warn({ datastore: store.description, err: problem.reason }, "datastore unreachable; forwarding continues with the last state, BGP's routes are still applied, reconnecting");
    healthy = false;
    stale = true;
    watch?.stop();
    watch = undefined;
    if (probe) return;
    probe = setTimeout(() => {
      res.list("IPPool").then(
        () => {
          probe = undefined;
          answered = true;
          schedule(0);
        },
        (e: Error) => {
          probe = undefined;
          backoff = Math.min(backoff * 2, 5000);
          log.debug({ datastore: store.description, err: datastoreReason(e), retryInMs: backoff }, "the datastore does not answer yet");
          lost(e);
        },
      );
    }, backoff);
  };
  const ensureWatch = () => {
    if (watch) return;
    watch = store.watch(
      WEFT_PREFIX,
      revision,
      () => {
        stale = true;
        schedule();
      },
      lost,
    );
  };
  // A sync that read the datastore: it answers, so watch (again) from what was read.
  const readWent = (readsBefore: number) => {
    if (reads === readsBefore) return;
    if (!healthy) log.info({ datastore: store.description, revision }, "datastore reachable again; resumed watching");
    healthy = true;
    ensureWatch();
  };
  const resyncAndWatch = async (): Promise<void> => {
    const readsBefore = reads;
    try {
      await sync();
      if (reads !== readsBefore) backoff = 500;
      readWent(readsBefore);
    } catch (err) {
      // The host refused part of the desired state (a route, the nat table): the
      // datastore is fine, so say what failed, keep watching, and try again.
      if (err instanceof HostApplyError) {
        if (err.message !== applyFailure) log.error({ err: err.message }, "could not apply every route or rule to this host (the rest is applied); trying again");
        applyFailure = err.message;
        readWent(readsBefore);
        backoff = Math.min(backoff * 2, 5000);
        schedule(backoff);
        return;
      }
      backoff = Math.min(backoff * 2, 5000);
      lost(err as Error);
    }
  };
  speaker?.on("routes", () => schedule(20));
  restoreTunnelIfDeleted(base, tunnelDevice, log, () => (running = running.then(resyncAndWatch, resyncAndWatch)));
  // Through the queue too: a BGP or watch event during the first sync would otherwise
  // run a second one alongside it (two route diffs, two nat and iptables installs).
  running = running.then(resyncAndWatch, resyncAndWatch);
  await running;
  // A safety net: resync now and then even if a watch event was lost.
  // It also checks what it installed is still there (routes, weft0, the nat table).
  const verifyNow = () => {
    verifyNext = true;
    // While the datastore is away the probe asks it; the check still runs on the last view.
    if (healthy) stale = true;
    schedule();
  };
  const addressWatch = followNodeAddress({
    address: { cidr, uplink, how },
    hostAddresses: kernel.hostAddresses,
    detect: () => detectNodeAddress(addressRequest, HOST),
    log,
    exit: (code) => process.exit(code),
  });
  // Also looks again for the node's address, when it was found gone.
  const check = () => {
    addressWatch.recheck();
    verifyNow();
  };
  const periodic = setInterval(check, 30_000);
  // SIGHUP (systemctl reload weft-node): this node's configuration is the datastore,
  // followed as it changes; read it whole again and check what is installed, now.
  const hangup = reloadOnHangup(log, async () => {
    log.info({ datastore: store.description }, "SIGHUP: reading the datastore again and checking what is installed (options and environment variables take a restart)");
    check();
  });
  const compaction = compactHistory(store, opts.compactionPeriodS ?? 600, () => (healthy ? revision : 0), log);
  const linkWatch = watchLinks({ uplink, tunnel: tunnelDevice, tunnelMTU: () => base.owner.tunnelMTU, onUplinkAddressRemoved: addressWatch.removed, routesGoneWith: (dev) => base.owner.routesGoneWith(dev) }, log, check);

  log.info({ node: name, address: cidr, uplink, tunnel: tunnelDevice, tunnelAddress: tunnelAddr, vtepMAC: mac, datastore: store.description, ...base.dp.settings() }, "node running");
  const started = new Date().toISOString();
  const server = await startControlServer(control, {
    bgp: () => bgpStatus(speaker, startedAt),
    status: () => ({ name, address: cidr, addressFrom: how, mode: "datastore", backend, datastore: { url: store.description, reachable: healthy, revision, ...(healthy ? {} : problem) }, applyError: applyFailure || null, addressProblem: addressWatch.problem(), unreadableRecords: Object.fromEntries(unreadableRecords), peerProblems, routes: base.owner.routeCounts, ipam: ipamUsage, tunnel: { device: tunnelDevice, mtu: base.owner.tunnelMTU, address: tunnelAddr, vtepMAC: mac }, ...base.dp.settings(), uplink: { device: uplink, mtu: link.mtu }, pathMTUs: base.dp.pathMtus(), started, counters: base.fp.counters() }),
    routes: () => ({
      fastPath: fastRoutes(base.fp, backend === "bgp" ? "bgp" : "datastore"),
      bgp: new Listed(speaker?.rib.bestPaths() ?? [], (p) => ({ ...pathView(p), stale: p.stale ?? false })),
      // BIRD's "show route filtered": what a BGPPeer's import rules keep out, as received.
      bgpFiltered: new Listed(speaker?.rib.filteredPaths() ?? [], pathView),
      // BIRD's "show route export": what each peer has from this node, as sent.
      bgpExported: new Listed(speaker?.exported() ?? [], (e) => ({ cidr: e.prefix, peer: e.peer, ...attrsView(e.attrs) })),
    }),
    counters: () => base.fp.counters(),
    podDrops: () => base.owner.podDrops(),
  }, listeners);
  logServing(listeners, log);
  await untilSignal(base, log, () => {
    // No NOTIFICATION: peers with graceful restart keep our routes while we are gone.
    void speaker?.stop(true);
    hangup.stop();
    clearInterval(periodic);
    linkWatch.stop();
    addressWatch.stop();
    if (pending) clearTimeout(pending);
    if (probe) clearTimeout(probe);
    clearInterval(compaction);
    watch?.stop();
    server.close();
  });
  await store.close().catch(() => {});
}

/**
 * etcd keeps every revision until it is compacted, and at its space quota (2 GiB by
 * default) refuses every write: no pod gets an address. Calico's kube-controllers
 * compacts it every 10 minutes (COMPACTION_PERIOD); weft has no controller, so each
 * node compacts it to the revision it had read one period before, so that a period of
 * history stays for watches that reconnect. A revision already compacted is a no-op:
 * the nodes need no leader. `current` gives the revision last read (0: none now).
 */
export function compactHistory(store: Pick<Datastore, "compact" | "description">, periodS: number, current: () => number, log: Logger): NodeJS.Timeout | undefined {
  if (!store.compact || periodS <= 0) return undefined;
  let mark = current();
  let said = false;
  // Spread over the period, so that the nodes of a cluster do not all ask at once.
  const timer = setInterval(() => {
    const to = mark;
    mark = current();
    if (to <= 1) return;
    store.compact!(to).then(
      (did) => {
        if (!did) return;
        (said ? log.debug : log.info).call(log, { datastore: store.description, revision: to, periodS }, "compacted etcd's history up to the revision read one period ago (as Calico's kube-controllers does; COMPACTION_PERIOD=0 turns it off)");
        said = true;
      },
      (err: Error) => log.warn({ datastore: store.description, revision: to, err: datastoreReason(err) }, "could not compact etcd's history; trying again next period"),
    );
  }, periodS * 1000 * (0.9 + 0.2 * Math.random()));
  timer.unref();
  return timer;
}

/** Whether a TCP connection to address:port is taken within ms. */
function answersTcp(address: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: address, port, timeout: ms });
    const done = (yes: boolean) => {
      socket.destroy();
      resolve(yes);
    };
    socket.once("connect", () => done(true));
    socket.once("timeout", () => done(false));
    socket.once("error", () => done(false));
  });
}

/** BGP peers as `weft node status` prints them, and Calico's readiness rule: ready with
 * no peers; within 30 s of start every peer must be Established, after that one is enough.
 * `startedAt` is from performance.now() (monotonic, whatever the wall clock does). */
export function bgpStatus(speaker: Speaker | undefined, startedAt: number): { enabled: boolean; peers: PeerStatus[]; ready: boolean; reason: string } {
  if (!speaker) return { enabled: false, peers: [], ready: true, reason: "BGP is off (vxlan backend)" };
  const peers = speaker.status();
  const down = peers.filter((p) => p.state !== "up").map((p) => p.address);
  const young = performance.now() - startedAt < 30_000;
  const ready = peers.length === 0 || (young ? down.length === 0 : down.length < peers.length);
  const reason = ready ? (peers.length ? "BGP peers Established" : "no BGP peers") : `BGP not Established with ${down.join(", ")}`;
  return { enabled: true, peers, ready, reason };
}
