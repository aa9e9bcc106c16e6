// weft node run --datastore URL: registers the Node, claims its tunnel address (and so
// its first block), and keeps the route owner in step with the datastore through a
// watch. Without BGP, routes come from block affinities and Node resources (Calico's
// VXLAN backend). The data plane never waits on the datastore: when it is gone,
// forwarding goes on with the last state and the node reconnects by itself.
import os from "node:os";
import type { Logger } from "pino";
import { parseCIDR } from "../dataplane/addr.js";
import { vtepMAC as deriveMAC } from "../dataplane/vtep.js";
import * as kernel from "../native/iproute.js";
import { controlSocketPath, startControlServer } from "../control/server.js";
import { openDatastore, ConflictError, type Datastore, type Watch } from "../store/store.js";
import { Resources } from "../resources/client.js";
import { API_VERSION, type IPPool, type NodeResource } from "../resources/kinds.js";
import { IPAM, BLOCK_PREFIX, type Block } from "../ipam/ipam.js";
import { clusterState } from "../routing/cluster.js";
import { ConfigError } from "./config.js";
import { fastRoutes, startDataplane, untilSignal } from "./run.js";

export interface ClusterNodeOptions {
  datastore: string;
  name?: string;
  ip?: string; // A/P
  interface?: string;
  control?: string;
  tunnelDevice?: string;
}

export const DEFAULT_POOL: IPPool = {
  apiVersion: API_VERSION,
  kind: "IPPool",
  metadata: { name: "default-ipv4-ippool" },
  spec: { cidr: "192.168.0.0/16", blockSize: 26, ipipMode: "Always", vxlanMode: "Never", natOutgoing: true, disabled: false, disableBGPExport: false, nodeSelector: "all()" },
};

/** The node's address: --ip, or the first IPv4 address of the interface with the default route. */
async function detectAddress(opts: ClusterNodeOptions): Promise<{ cidr: string; uplink: string }> {
  if (opts.ip) {
    const c = parseCIDR(opts.ip, false);
    if (!c || !opts.ip.includes("/")) throw new ConfigError(`--ip: expected an address with its prefix length, such as 10.30.0.11/24 (got "${opts.ip}")`);
    const uplink = opts.interface ?? (await kernel.interfaceWithAddress(opts.ip.split("/")[0]));
    if (!uplink) throw new ConfigError(`--ip: ${opts.ip} is on no interface of this host; fix it or pass --interface`);
    return { cidr: opts.ip, uplink };
  }
  const dev = opts.interface ?? (await kernel.defaultRouteDevice());
  if (!dev) throw new ConfigError("cannot autodetect the node address: no default route; pass --ip ADDRESS/PREFIX");
  const addr = await kernel.firstAddress(dev);
  if (!addr) throw new ConfigError(`cannot autodetect the node address: ${dev} has no IPv4 address; pass --ip ADDRESS/PREFIX`);
  return { cidr: addr, uplink: dev };
}

export async function runClusterNode(opts: ClusterNodeOptions, log: Logger): Promise<void> {
  const name = opts.name ?? os.hostname();
  const { cidr, uplink } = await detectAddress(opts);
  const link = kernel.linkInfo(uplink);
  if (!link) throw new ConfigError(`--interface: ${uplink} does not exist on this host`);
  if (cidr.endsWith("/32")) log.warn({ address: cidr }, "node address is a /32: no other node is ever in its subnet, so CrossSubnet pools encapsulate everything; register the real prefix with --ip");
  const localAddress = cidr.split("/")[0];
  const tunnelDevice = opts.tunnelDevice ?? "weft0";
  let store: Datastore;
  try {
    store = await openDatastore(opts.datastore);
  } catch (err) {
    throw new ConfigError(`--datastore: ${(err as Error).message}`);
  }
  const res = new Resources(store);
  const ipam = new IPAM(store, () => res.list<IPPool>("IPPool"));
  const mac = deriveMAC(name);

  // Register: a default pool if there is none (as Calico does), our Node, a tunnel address.
  if ((await res.list("IPPool")).length === 0) {
    try {
      await res.apply([DEFAULT_POOL], "create");
      log.info({ pool: DEFAULT_POOL.spec }, "created the default IPv4 pool");
    } catch (err) {
      if (!/already exists/.test(String(err)) && !(err instanceof ConflictError)) throw err;
    }
  }
  const existing = await res.get<NodeResource>("Node", name);
  const tunnelHandle = `tunnel-addr-${name}`;
  let tunnelAddr = (await ipam.addressesOf(tunnelHandle))[0];
  if (!tunnelAddr) tunnelAddr = (await ipam.assign({ node: name, handle: tunnelHandle, labels: existing?.metadata.labels })).address;
  const nodeRes: NodeResource = {
    apiVersion: API_VERSION,
    kind: "Node",
    metadata: { name, labels: existing?.metadata.labels },
    spec: { ...existing?.spec, bgp: { ...existing?.spec.bgp, ipv4Address: cidr }, ipv4VXLANTunnelAddr: tunnelAddr, vxlanTunnelMACAddr: mac },
  };
  if (!nodeRes.metadata.labels) delete nodeRes.metadata.labels;
  await res.apply([nodeRes]);

  // Underlay gateways toward directly routed nodes off our subnet, looked up once each.
  const gateways = new Map<string, string>();
  const base = startDataplane({ name, localAddress, uplink, underlayMTU: link.mtu, tunnelDevice, vtepMAC: mac, vni: 4096, vxlanPort: 4789, offloads: { tso: true, gro: true, udpGSO: true, udpGRO: true }, underlayGateway: (a) => gateways.get(a) }, log);

  let revision = 0;
  let watch: Watch | undefined;
  let healthy = true;
  let pending: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  let lastSync = "";

  // Reads the whole cluster view and hands the desired state to the route owner.
  const sync = async (): Promise<void> => {
    const [pools, nodes, blocks] = await Promise.all([res.list<IPPool>("IPPool"), res.list<NodeResource>("Node"), store.list(BLOCK_PREFIX)]);
    revision = Math.max(revision, blocks.revision);
    const state = clusterState(name, { pools, nodes, blocks: blocks.items.map((kv) => JSON.parse(kv.value) as Block) });
    for (const r of state.remote.filter((x) => x.encapsulation === "None" && !gateways.has(x.address))) {
      const via = await kernel.routeGet(r.address);
      if (via?.gateway) gateways.set(r.address, via.gateway);
    }
    const result = await base.owner.apply({ remote: state.remote, localBlocks: state.localBlocks, tunnelMTU: link.mtu - state.overhead, nat: { masqPools: state.masqPools, allPools: state.allPools } });
    const summary = JSON.stringify(state.remote.map((r) => `${r.cidr}:${r.encapsulation}`));
    if (summary !== lastSync) log.info({ revision, remoteBlocks: state.remote.length, localBlocks: state.localBlocks, ...result }, "in sync with the datastore");
    lastSync = summary;
  };
  const schedule = (delay = 30) => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      running = running.then(resyncAndWatch, resyncAndWatch);
    }, delay);
  };
  // Resync, then (re)watch from the revision we read; on failure try again with backoff.
  let backoff = 500;
  const resyncAndWatch = async (): Promise<void> => {
    try {
      await sync();
      if (!healthy) log.info({ datastore: store.description, revision }, "datastore reachable again; resumed watching");
      healthy = true;
      backoff = 500;
      if (!watch) {
        watch = store.watch("/weft/", revision, () => schedule(), (err) => {
          if (healthy) log.warn({ datastore: store.description, err: err.message }, "datastore unreachable; forwarding continues with the last state, reconnecting");
          healthy = false;
          watch?.stop();
          watch = undefined;
          schedule(backoff);
        });
      }
    } catch (err) {
      if (healthy) log.warn({ datastore: store.description, err: (err as Error).message }, "datastore unreachable; forwarding continues with the last state, reconnecting");
      healthy = false;
      watch?.stop();
      watch = undefined;
      backoff = Math.min(backoff * 2, 5000);
      schedule(backoff);
    }
  };
  await resyncAndWatch();
  // A safety net: resync now and then even if a watch event was lost.
  const periodic = setInterval(() => schedule(), 30_000);

  log.info({ node: name, address: cidr, uplink, tunnel: tunnelDevice, tunnelAddress: tunnelAddr, vtepMAC: mac, datastore: store.description, offloads: base.dp.active }, "node running");
  const started = new Date().toISOString();
  const server = await startControlServer(opts.control ?? controlSocketPath(name), {
    status: () => ({ name, address: cidr, mode: "datastore", datastore: { url: store.description, reachable: healthy, revision }, tunnel: { device: tunnelDevice, mtu: base.owner.tunnelMTU, address: tunnelAddr, vtepMAC: mac }, offloads: base.dp.active, uplink: { device: uplink, mtu: link.mtu }, started, counters: base.fp.counters() }),
    routes: () => fastRoutes(base.fp, "datastore"),
    counters: () => base.fp.counters(),
  });
  await untilSignal(base, log, () => {
    clearInterval(periodic);
    if (pending) clearTimeout(pending);
    watch?.stop();
    server.close();
  });
  await store.close().catch(() => {});
}
