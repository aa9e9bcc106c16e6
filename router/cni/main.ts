#!/usr/bin/env node
// weft-cni: the CNI plugin (spec 1.0.0; STATUS and GC from 1.1.0). Environment and
// stdin in, result or error JSON on stdout, exit code 0 or 1.
import { statfsSync } from "node:fs";
import { makeDirs } from "../native/dirs.js";
import path from "node:path";
import { pino, type Logger } from "pino";
import { DatastoreURLError, defaultDatastore, misconfigured, openDatastore, unreachable, type Datastore } from "../store/store.js";
import { Resources } from "../resources/client.js";
import { nodeIPv4, type IPPool, type NodeResource } from "../resources/kinds.js";
import { ipamFor, IPAMError, type IPAM } from "../ipam/ipam.js";
import { CNI, CniError } from "./errors.js";
import { parseNetConf, SUPPORTED_VERSIONS, type NetConf } from "./config.js";
import { hostAddresses, IFNAME } from "../native/iproute.js";
import { parseIPv4 } from "../dataplane/addr.js";
import { check, containerMAC, GATEWAY, HOST_MAC, hostVethName, linkMTU, unwire, vethOwner, vethsOwnedBy, wire } from "./wiring.js";

/**
 * A container's addresses are held under "<network name>.<container ID>", as Calico's
 * plugin names them, so one network's GC or repeated ADD never touches another
 * network's containers. Before, every network used "k8s-pod-network." (Calico's default
 * network name): DEL and CHECK still find a container's address under that handle.
 */
const handleOf = (conf: NetConf, containerID: string) => `${conf.name}.${containerID}`;
const LEGACY_HANDLE_PREFIX = "k8s-pod-network.";
/** Who may claim a container's host interface: its handle (the alias weft writes), or the bare container ID (the alias before). */
const ownersOf = (conf: NetConf, containerID: string) => [handleOf(conf, containerID), containerID];

/** The handle a container's addresses are held under in this network (its legacy one if only that has any). */
async function heldUnder(ipam: IPAM, conf: NetConf, containerID: string): Promise<{ handle: string; addresses: string[] }> {
  const handle = handleOf(conf, containerID);
  const addresses = await ipam.addressesOf(handle);
  if (addresses.length || handle === LEGACY_HANDLE_PREFIX + containerID) return { handle, addresses };
  const legacy = LEGACY_HANDLE_PREFIX + containerID;
  const old = await ipam.addressesOf(legacy);
  return old.length ? { handle: legacy, addresses: old } : { handle, addresses };
}

interface Env {
  command: string;
  containerID: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
}

function readEnv(): Env {
  const e = process.env;
  const command = e.CNI_COMMAND ?? "";
  if (!command) throw new CniError(CNI.INVALID_ENV, "CNI_COMMAND is not set", "set CNI_COMMAND to ADD, DEL, CHECK, VERSION, STATUS or GC");
  const args: Record<string, string> = {};
  // VERSION comes with dummy values for everything else: read nothing more for it.
  for (const pair of command === "VERSION" ? [] : (e.CNI_ARGS ?? "").split(";").filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new CniError(CNI.INVALID_ENV, `CNI_ARGS: "${pair}" is not KEY=VALUE`, "CNI_ARGS is KEY=VALUE pairs separated by ';'");
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { command, containerID: e.CNI_CONTAINERID ?? "", netns: e.CNI_NETNS ?? "", ifname: e.CNI_IFNAME ?? "", args };
}

function need(env: Env, ...vars: Array<"containerID" | "netns" | "ifname">): void {
  const names = { containerID: "CNI_CONTAINERID", netns: "CNI_NETNS", ifname: "CNI_IFNAME" };
  for (const v of vars) if (!env[v]) throw new CniError(CNI.INVALID_ENV, `${names[v]} is not set`, `${env.command} needs ${vars.map((x) => names[x]).join(", ")}`);
  // The spec's form; it becomes a handle, an interface alias and a log field.
  if (vars.includes("containerID") && !CONTAINER_ID.test(env.containerID)) {
    throw new CniError(CNI.INVALID_ENV, `CNI_CONTAINERID "${env.containerID}" is not a container ID`, "it must start with a letter or digit, then letters, digits, '_', '.' or '-'");
  }
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const NSFS_MAGIC = 0x6e736673;

/** ADD and CHECK: the interface name must be one the kernel takes, and (ADD) the namespace a namespace. */
function checkTarget(env: Env, opts: { netns: boolean }): void {
  if (!IFNAME.test(env.ifname)) throw new CniError(CNI.INVALID_ENV, `CNI_IFNAME "${env.ifname}" is not an interface name`, "use 1-15 letters, digits, '.', '-' or '_', e.g. eth0");
  if (!opts.netns) return;
  let type: number | undefined;
  try {
    type = statfsSync(env.netns).type;
  } catch (err) {
    const gone = (err as NodeJS.ErrnoException).code === "ENOENT";
    throw new CniError(CNI.INVALID_ENV, `CNI_NETNS ${env.netns} ${gone ? "does not exist" : "cannot be read"}`, (err as Error).message);
  }
  if (type !== NSFS_MAGIC) throw new CniError(CNI.INVALID_ENV, `CNI_NETNS ${env.netns} is not a network namespace`, "give the path of the container's namespace, e.g. /run/netns/NAME or /proc/PID/ns/net");
}

async function withStore<T>(conf: NetConf, f: (s: Datastore) => Promise<T>): Promise<T> {
  let store: Datastore;
  try {
    const fromConf = { ca: conf.etcd_ca_cert_file, cert: conf.etcd_cert_file, key: conf.etcd_key_file };
    const user = conf.etcd_username || conf.etcd_password ? { username: conf.etcd_username, password: conf.etcd_password } : undefined;
    store = await openDatastore(conf.datastore, { tls: fromConf.ca || fromConf.cert ? fromConf : undefined, user });
  } catch (err) {
    // A certificate file that cannot be read is configuration; anything else may pass.
    if (err instanceof DatastoreURLError) throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", err.message);
    throw new CniError(CNI.TRY_AGAIN, `cannot open the datastore ${conf.datastore}`, (err as Error).message);
  }
  try {
    return await f(store);
  } catch (err) {
    // Certificates, users and roles: configuration, which calling again does not fix.
    const bad = !(err instanceof CniError) && misconfigured(err);
    if (bad) throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `datastore ${conf.datastore}: ${bad}`);
    // etcd down or cut off: the runtime is to call again later (CNI's code 11), told why.
    const why = !(err instanceof CniError) && unreachable(err);
    if (why) throw new CniError(CNI.TRY_AGAIN, `datastore ${conf.datastore} did not answer (${why}); try again`, (err as Error).message);
    throw err;
  } finally {
    await store.close().catch(() => {});
  }
}

function ipamOf(store: Datastore): { ipam: IPAM; res: Resources } {
  const res = new Resources(store);
  return { ipam: ipamFor(store, res), res };
}

/**
 * The pod MTU: the configuration's, else weft0's (the node sets it from the uplink and
 * the pools' encapsulation). Without weft0 the node is not running here yet: guessing
 * (1480 was the guess) gives VXLAN pods an MTU their packets do not fit, so try again.
 */
async function tunnelMTU(conf: NetConf): Promise<number> {
  if (conf.mtu) return conf.mtu;
  const mtu = await linkMTU("weft0");
  if (mtu === undefined) {
    throw new CniError(CNI.TRY_AGAIN, "weft0 does not exist: the weft node on this host is not running yet, and pods take weft0's MTU", "start \"weft node run\" (or set \"mtu\" in the network configuration)");
  }
  return mtu;
}

/**
 * The Node of this host: the configured nodename's, which must have an address on this
 * host (a configuration copied from another host would take addresses from that host's
 * blocks, which the network routes there). Without a configured nodename: the
 * hostname's Node, or else the Node whose address is on this host (a node started with
 * --name, as Calico's plugin learns it from calico-node).
 */
async function thisNode(res: Resources, conf: NetConf): Promise<NodeResource> {
  const mine = await hostAddresses();
  const local = (n: NodeResource) => mine.has(nodeIPv4(n)?.address ?? "");
  let node = await res.get<NodeResource>("Node", conf.nodename);
  if (!node && !conf.nodenameGiven) node = (await res.list<NodeResource>("Node")).find(local);
  if (!node) throw new CniError(CNI.TRY_AGAIN, `Node(${conf.nodename}) is not registered: is "weft node run" running on this host?`, `datastore ${conf.datastore}; set "nodename" in the network configuration if the node runs under another name`);
  if (nodeIPv4(node) && !local(node)) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `nodename ${node.metadata.name}: that Node's address ${nodeIPv4(node)!.address} is not on this host (a configuration copied from another host?); set nodename to this host's node, or leave it out for the hostname`);
  }
  return node;
}

/** ipam.ipv4_pools (names or CIDRs, as Calico takes them) as pool names; each must exist and be enabled. */
async function requestedPools(res: Resources, wanted: string[]): Promise<string[]> {
  const all = await res.list<IPPool>("IPPool");
  return wanted.map((w) => {
    const pool = all.find((p) => p.metadata.name === w || p.spec.cidr === w);
    if (!pool) throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `ipam.ipv4_pools: the given pool (${w}) does not exist (pools: ${all.map((p) => `${p.metadata.name} ${p.spec.cidr}`).join(", ") || "none"})`);
    if (pool.spec.disabled) throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `ipam.ipv4_pools: the given pool (${w}) exists, but is disabled`);
    if (pool.spec.cidr.includes(":")) throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `ipam.ipv4_pools: the given pool (${w}) is an IPv6 pool`);
    return pool.metadata.name;
  });
}

/** The ADD result (CNI 1.0.0 "Success"); 0.3.x and 0.4.0 also want the address's version. */
function addResult(conf: NetConf, env: Env, address: string, hostVeth: string, mac: string): unknown {
  // Before 1.0.0 each address also names its IP version.
  const v4 = conf.cniVersion.startsWith("0.") ? { version: "4" } : {};
  return {
    cniVersion: conf.cniVersion,
    interfaces: [{ name: hostVeth, mac: HOST_MAC }, { name: env.ifname, mac, sandbox: env.netns }],
    ips: [{ ...v4, address: `${address}/32`, gateway: GATEWAY, interface: 1 }],
    routes: [{ dst: "0.0.0.0/0", gw: GATEWAY }],
    dns: {},
  };
}

/**
 * The address a runtime asks for, if any: Calico's CNI_ARGS IP, or the "ips" capability
 * (runtimeConfig.ips, as podman --ip passes it). One IPv4 address; a prefix is ignored.
 */
function requestedAddress(env: Env, conf: NetConf): string | undefined {
  const one = (list: string[], code: number, where: string) => {
    const bad = list.find((t) => parseIPv4(t.split("/")[0]) === undefined);
    if (bad !== undefined) throw new CniError(code, `${where}: "${bad}" is not an IPv4 address`, "weft assigns one IPv4 address per container");
    const addrs = [...new Set(list.map((t) => t.split("/")[0]))];
    if (addrs.length > 1) throw new CniError(code, `${where} asks for ${addrs.length} addresses (${addrs.join(", ")})`, "weft assigns one IPv4 address per container");
    return addrs[0];
  };
  const fromArgs = env.args.IP !== undefined ? one(env.args.IP.split(",").filter(Boolean), CNI.INVALID_ENV, "CNI_ARGS IP") : undefined;
  const fromRuntime = conf.runtimeConfig?.ips?.length ? one(conf.runtimeConfig.ips, CNI.INVALID_CONFIG, "runtimeConfig ips") : undefined;
  if (fromArgs && fromRuntime && fromArgs !== fromRuntime) throw new CniError(CNI.INVALID_CONFIG, `CNI_ARGS IP (${fromArgs}) and runtimeConfig ips (${fromRuntime}) ask for different addresses`, "give one of them");
  return fromArgs ?? fromRuntime;
}

async function add(env: Env, conf: NetConf, log: Logger): Promise<unknown> {
  need(env, "containerID", "netns", "ifname");
  const requested = requestedAddress(env, conf);
  checkTarget(env, { netns: true });
  const handle = handleOf(conf, env.containerID);
  const hostVeth = hostVethName(env.args, env.containerID);
  const owners = ownersOf(conf, env.containerID);
  const mtu = await tunnelMTU(conf);
  return withStore(conf, async (store) => {
    const { ipam, res } = ipamOf(store);
    // An ADD repeated for a container that is wired and whole answers as the first did
    // and changes nothing.
    const [had] = await ipam.addressesOf(handle);
    if (had && !(await check({ netns: env.netns, ifname: env.ifname, hostVeth, address: had, owner: owners }))) {
      log.info({ containerID: env.containerID, address: had, hostVeth }, "already wired: same result");
      return addResult(conf, env, had, hostVeth, await containerMAC(env.netns, env.ifname));
    }
    // No Node: no weft node runs for this host (yet), and nobody would route the block.
    const node = await thisNode(res, conf);
    const nodename = node.metadata.name;
    const pools = conf.ipam?.ipv4_pools && (await requestedPools(res, conf.ipam.ipv4_pools));
    // Otherwise start clean: an ADD retried after a failure, or the host end left by
    // an earlier container of the same pod (replaced, as Calico does).
    const stale = await vethOwner(hostVeth);
    if (stale !== undefined) {
      log.info({ containerID: env.containerID, hostVeth, previousOwner: stale }, "replacing an existing host interface");
      await unwire(hostVeth);
    }
    await ipam.releaseByHandle(handle);
    let address: string;
    try {
      address = requested ? (await ipam.assignIP({ node: nodename, handle, address: requested })).address : (await ipam.assign({ node: nodename, handle, labels: node.metadata.labels, pools })).address;
    } catch (err) {
      if (err instanceof IPAMError) throw new CniError(CNI.IPAM, err.message, `node ${nodename}`);
      throw new CniError(CNI.TRY_AGAIN, "the datastore failed during address assignment; try again", (err as Error).message);
    }
    log.info({ containerID: env.containerID, address, hostVeth }, "address assigned");
    try {
      if (process.env.WEFT_CNI_FAIL_AFTER_IPAM === "1") throw new Error("failure injected after IPAM assignment (WEFT_CNI_FAIL_AFTER_IPAM)");
      const w = await wire({ netns: env.netns, ifname: env.ifname, hostVeth, address, mtu, owner: handle });
      return addResult(conf, env, address, w.hostVeth, w.containerMAC);
    } catch (err) {
      // Nothing half-done stays behind: the address goes back, the veth goes away.
      await unwire(hostVeth, { owner: owners, address });
      await ipam.releaseByHandle(handle);
      log.warn({ containerID: env.containerID, address, err: (err as Error).message }, "wiring failed; address released");
      throw new CniError(CNI.WIRING, `could not wire the container: ${(err as Error).message}`, `address ${address} was released`);
    }
  });
}

async function del(env: Env, conf: NetConf, log: Logger): Promise<void> {
  need(env, "containerID", "ifname");
  const hostVeth = hostVethName(env.args, env.containerID);
  await withStore(conf, async (store) => {
    const { ipam } = ipamOf(store);
    const { handle, addresses: addrs } = await heldUnder(ipam, conf, env.containerID);
    await unwire(hostVeth, { owner: ownersOf(conf, env.containerID), address: addrs[0] });
    const released = await ipam.releaseByHandle(handle);
    log.info({ containerID: env.containerID, released, hostVeth }, "deleted");
  });
}

async function checkCmd(env: Env, conf: NetConf): Promise<void> {
  need(env, "containerID", "netns", "ifname");
  checkTarget(env, { netns: false });
  await withStore(conf, async (store) => {
    const [address] = (await heldUnder(ipamOf(store).ipam, conf, env.containerID)).addresses;
    if (!address) throw new CniError(CNI.CHECK_FAILED, `no address is assigned to container ${env.containerID}`);
    const problem = await check({ netns: env.netns, ifname: env.ifname, hostVeth: hostVethName(env.args, env.containerID), address, owner: ownersOf(conf, env.containerID) });
    if (problem) throw new CniError(CNI.CHECK_FAILED, problem);
  });
}

async function gc(conf: NetConf, log: Logger): Promise<void> {
  // Without the list, "none is valid" would release every pod on the node: refuse.
  const list = conf["cni.dev/valid-attachments"];
  if (!list) throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", "GC needs cni.dev/valid-attachments (the attachments that still exist); nothing was released");
  const valid = new Set(list.map((a) => a.containerID));
  await withStore(conf, async (store) => {
    const { ipam, res } = ipamOf(store);
    // This host's node (an unregistered one may still have addresses under its name);
    // a configuration copied from another host is refused, not collected for it.
    const nodename = await thisNode(res, conf).then(
      (n) => n.metadata.name,
      (err: unknown) => {
        if (err instanceof CniError && err.code === CNI.TRY_AGAIN) return conf.nodename;
        throw err;
      },
    );
    const handles = new Set<string>();
    for (const { block } of await ipam.blocks()) {
      // This network's only: another network's containers are not in this list.
      for (const al of Object.values(block.allocations)) if (al.node === nodename && al.handle.startsWith(`${conf.name}.`)) handles.add(al.handle);
    }
    for (const h of handles) {
      const id = h.slice(conf.name.length + 1);
      if (valid.has(id)) continue;
      for (const veth of new Set([...(await vethsOwnedBy(ownersOf(conf, id))), hostVethName({}, id)])) await unwire(veth, { owner: ownersOf(conf, id) });
      log.info({ containerID: id, released: await ipam.releaseByHandle(h) }, "garbage-collected a stale attachment");
    }
  });
}

/** The log_file destination, its directory made as Calico's plugin does; one that cannot be opened is configuration. */
function logFile(file: string): ReturnType<typeof pino.destination> {
  try {
    makeDirs(path.dirname(file));
    return pino.destination({ dest: file, sync: true });
  } catch (err) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `log_file ${file} cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/**
 * The network configuration, read to the end of stdin. Not with a synchronous read: a
 * runtime may hand over a non-blocking pipe and write the configuration only after the
 * plugin has started, and a synchronous read then fails with EAGAIN.
 */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  } catch (err) {
    throw new CniError(CNI.IO, "cannot read the network configuration on stdin", (err as Error).message);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function main(): Promise<number> {
  let version = "1.0.0";
  try {
    const env = readEnv();
    const stdin = env.command === "VERSION" && process.stdin.isTTY ? "{}" : await readStdin();
    if (env.command === "VERSION") {
      // VERSION gets dummy values for everything else: validate nothing.
      try {
        version = (JSON.parse(stdin) as { cniVersion?: string }).cniVersion ?? version;
      } catch {
        /* dummy config */
      }
      process.stdout.write(`${JSON.stringify({ cniVersion: SUPPORTED_VERSIONS.includes(version) ? version : "1.0.0", supportedVersions: SUPPORTED_VERSIONS })}\n`);
      return 0;
    }
    let fallback: string;
    try {
      fallback = defaultDatastore();
    } catch (err) {
      throw new CniError(CNI.INVALID_ENV, (err as Error).message, "ETCD_ENDPOINTS in the plugin's environment; or set datastore in the network configuration");
    }
    const conf = parseNetConf(stdin, { datastore: fallback });
    version = conf.cniVersion;
    const log = pino({ level: conf.logLevel, base: { plugin: "weft-cni", command: env.command } }, conf.log_file ? logFile(conf.log_file) : pino.destination(2));
    switch (env.command) {
      case "ADD":
        process.stdout.write(`${JSON.stringify(await add(env, conf, log))}\n`);
        return 0;
      case "DEL":
        await del(env, conf, log);
        return 0;
      case "CHECK":
        await checkCmd(env, conf);
        return 0;
      case "STATUS":
        await withStore(conf, async (s) => {
          await s.list("/weft/resources/ippools/");
        }).catch((err) => {
          throw new CniError(CNI.NOT_AVAILABLE, "weft's datastore is not reachable: the plugin cannot assign addresses now", err instanceof CniError ? err.details : (err as Error).message);
        });
        return 0;
      case "GC":
        await gc(conf, log);
        return 0;
      default:
        throw new CniError(CNI.INVALID_ENV, `unknown CNI_COMMAND "${env.command}"`, "use ADD, DEL, CHECK, VERSION, STATUS or GC");
    }
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CNI.IO, (err as Error).message);
    process.stdout.write(`${JSON.stringify({ cniVersion: SUPPORTED_VERSIONS.includes(version) ? version : "1.0.0", code: e.code, msg: e.message, details: e.details })}\n`);
    return 1;
  }
}

// Exit as soon as the answer is written: the runtime waits for the plugin to exit, and
// a connection still being attempted (an etcd member cut off) would hold it ~130 s.
process.exit(await main());
