// weft node checksystem: what `weft node run` needs of this host, checked before it
// runs, as calicoctl node checksystem does: root, the addon, a TUN with its offloads,
// UDP GSO/GRO, a raw IPIP socket, the VXLAN and BGP ports (BGP's as the datastore's
// BGPConfiguration sets it), the datastore, the commands weft runs, IP forwarding and
// whether NetworkManager leaves weft's devices alone.
// It changes nothing but a throwaway TUN device, removed again.
import { accessSync, constants, existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { native } from "../native/index.js";
import * as kernel from "../native/iproute.js";
import { command } from "../native/command.js";
import { TSO_OFFLOAD, VXLAN_PORT } from "../dataplane/dataplane.js";
import { datastoreReason, defaultDatastore, openDatastore, type Datastore } from "../store/store.js";
import { iptablesBackends } from "../native/iptables.js";
import { filtersReversePath } from "./run.js";
import { Resources } from "../resources/client.js";
import type { BGPConfiguration } from "../resources/kinds.js";
import { bgpSettings, DEFAULT_BGP_PORT } from "../bgp/peers.js";

export interface Check {
  what: string;
  result: "OK" | "WARN" | "FAIL";
  detail: string;
}

const IPPROTO_IPIP = 4;

/** Who holds a port, from ss: "bird (pid 812)", or the kernel's VXLAN devices using it. */
async function holders(proto: "tcp" | "udp", port: number): Promise<Array<{ name: string; pid?: number }>> {
  const ss = await command("ss", ["-H", "-lnp", proto === "tcp" ? "-t" : "-u", `sport = :${port}`]);
  const found = [...ss.stdout.matchAll(/\("([^"]+)",pid=(\d+)/g)].map((m) => ({ name: m[1], pid: Number(m[2]) }));
  if (found.length || proto === "tcp") return found;
  // A kernel VXLAN device's socket has no process.
  const links = await command("ip", ["-j", "-d", "link", "show", "type", "vxlan"]);
  try {
    const devices = (JSON.parse(links.stdout || "[]") as Array<{ ifname: string; linkinfo?: { info_data?: { port?: number } } }>).filter((l) => (l.linkinfo?.info_data?.port ?? VXLAN_PORT) === port);
    return devices.map((d) => ({ name: `the kernel's VXLAN device ${d.ifname}` }));
  } catch {
    return [];
  }
}

/** An error's message, with what to do when it is a permission the host withheld. */
function why(err: unknown, otherwise = ""): string {
  const e = err as { errno?: number; message: string };
  const denied = e.errno === os.constants.errno.EPERM || e.errno === os.constants.errno.EACCES;
  return `${e.message}${denied ? " (needs root, or CAP_NET_ADMIN and CAP_NET_RAW)" : otherwise}`;
}

const describe = (hs: Array<{ name: string; pid?: number }>) => (hs.length ? hs.map((h) => (h.pid ? `${h.name} (pid ${h.pid})` : h.name)).join(", ") : "another socket");

/** A port weft binds: free, held by the weft node running here (fine), or taken. */
async function portCheck(what: string, proto: "tcp" | "udp", port: number, weftPid: number | undefined, taken: string): Promise<Check> {
  try {
    const fd = proto === "tcp" ? native().tcpSocket("0.0.0.0", port) : native().udpOpen("0.0.0.0", port);
    native().close(fd);
    return { what, result: "OK", detail: "free" };
  } catch (err) {
    if ((err as { errno?: number }).errno !== os.constants.errno.EADDRINUSE) return { what, result: "FAIL", detail: why(err) };
    const hs = await holders(proto, port);
    if (weftPid && hs.length && hs.every((h) => h.pid === weftPid)) return { what, result: "OK", detail: `held by the weft node running here (pid ${weftPid})` };
    return { what, result: "FAIL", detail: `taken by ${describe(hs)}: ${taken}` };
  }
}

const DATASTORE_WAIT_MS = 5_000;

/**
 * The datastore check, and the BGP port to check: the default BGPConfiguration's
 * listenPort when the datastore answers, else 179. A datastore that does not answer is
 * a warning: a node waits for it, and a static node (--config) needs none.
 */
async function datastoreCheck(url: string): Promise<{ check: Check; bgpPort: number }> {
  const what = "datastore";
  if (url.startsWith("sqlite:") && !existsSync(url.slice("sqlite:".length))) {
    return { check: { what, result: "OK", detail: `${url}: not made yet (weft node run makes it); BGP on TCP ${DEFAULT_BGP_PORT}` }, bgpPort: DEFAULT_BGP_PORT };
  }
  let timer: NodeJS.Timeout | undefined;
  let store: Datastore | undefined;
  try {
    store = await openDatastore(url, { create: false });
    const answer = new Resources(store).list<BGPConfiguration>("BGPConfiguration");
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${DATASTORE_WAIT_MS / 1000} s`)), DATASTORE_WAIT_MS)));
    // This host's node, named as weft node run names it by default.
    const port = bgpSettings(await Promise.race([answer, timeout]), process.env.NODENAME || os.hostname().toLowerCase()).listenPort;
    return { check: { what, result: "OK", detail: `${url} answered; BGP on TCP ${port}${port !== DEFAULT_BGP_PORT ? " (BGPConfiguration listenPort)" : ""}` }, bgpPort: port };
  } catch (err) {
    return { check: { what, result: "WARN", detail: `${url}: ${datastoreReason(err)} (a node waits for it; static nodes need none); BGP checked on TCP ${DEFAULT_BGP_PORT}` }, bgpPort: DEFAULT_BGP_PORT };
  } finally {
    clearTimeout(timer);
    await store?.close().catch(() => {});
  }
}

/** A shell-style glob (* and ?) as a whole-name, any-case RegExp. */
function globRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^$(){}|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped.replaceAll("*", ".*").replaceAll("?", ".")}$`, "i");
}

/** Where NetworkManager reads its configuration. */
const NM_CONFIG = ["/etc/NetworkManager/NetworkManager.conf", "/etc/NetworkManager/conf.d", "/run/NetworkManager/conf.d", "/usr/lib/NetworkManager/conf.d"];

/**
 * NetworkManager takes up the interfaces of the root namespace unless told to leave them
 * alone; Calico's documentation asks for a conf.d file naming its devices in
 * `unmanaged-devices`. running: it runs here; configs: its configuration files' texts.
 */
export function networkManagerCheck(running: boolean, configs: string[], tunnelDevice: string): Check {
  const what = "NetworkManager";
  if (!running) return { what, result: "OK", detail: "not running" };
  const specs = configs.flatMap((text) => [...text.matchAll(/^\s*unmanaged-devices\s*=(.*)$/gm)].flatMap((m) => m[1].split(/[;,]/).map((x) => x.trim())));
  // interface-name:GLOB (=: exact, ~: any case); "*" alone is every device.
  const globs = specs.filter((x) => x.startsWith("interface-name:")).map((x) => x.slice("interface-name:".length).replace(/^[=~]/, ""));
  const covered = (name: string) => specs.includes("*") || globs.some((g) => globRegExp(g).test(name));
  // Each device as said, and a name of it to try the globs on (a pod's veth: cali + 11 hex).
  const left = [[tunnelDevice, tunnelDevice], ["cali*", "cali0123456789a"]].filter(([, name]) => !covered(name)).map(([said]) => said);
  if (!left.length) return { what, result: "OK", detail: `running; it leaves ${tunnelDevice} and cali* alone (unmanaged-devices)` };
  return { what, result: "WARN", detail: `running, and not told to leave ${left.join(" and ")} alone: add /etc/NetworkManager/conf.d/weft.conf with "[keyfile]" and "unmanaged-devices=interface-name:cali*;interface-name:${tunnelDevice}" (as Calico's documentation asks for its devices), then nmcli general reload` };
}

/** Whether a process of this name (its comm) runs here. */
function running(comm: string): boolean {
  return readdirSync("/proc").some((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === comm;
    } catch {
      return false;
    }
  });
}

/** The texts of the files that can be read, in the order given. */
function texts(files: string[]): string[] {
  return files.flatMap((f) => {
    try {
      return [readFileSync(f, "utf8")];
    } catch {
      return [];
    }
  });
}

const confFiles = (dir: string) => {
  try {
    return readdirSync(dir).filter((f) => f.endsWith(".conf"));
  } catch {
    return [];
  }
};

/** Whether NetworkManager runs here, and its configuration files' texts. */
function networkManager(): { running: boolean; configs: string[] } {
  const files = NM_CONFIG.flatMap((p) => (p.endsWith(".conf") ? [p] : confFiles(p).map((f) => `${p}/${f}`)));
  return { running: running("NetworkManager"), configs: texts(files) };
}

const NETWORKD_MAIN = ["/etc/systemd/networkd.conf", "/run/systemd/networkd.conf", "/usr/local/lib/systemd/networkd.conf", "/usr/lib/systemd/networkd.conf"];

/**
 * Whether systemd-networkd runs here, and its configuration in the order it reads it: the
 * first main file found, then the drop-ins (networkd.conf.d/*.conf) by file name, one in
 * /etc masking one of that name further down the list.
 */
function networkd(): { running: boolean; configs: string[] } {
  const main = NETWORKD_MAIN.find((f) => existsSync(f));
  const dropIns = new Map<string, string>();
  for (const dir of NETWORKD_MAIN.map((f) => `${f}.d`)) for (const f of confFiles(dir)) if (!dropIns.has(f)) dropIns.set(f, `${dir}/${f}`);
  const files = [...(main ? [main] : []), ...[...dropIns.keys()].sort().map((f) => dropIns.get(f)!)];
  return { running: running("systemd-networkd"), configs: texts(files) };
}

/**
 * systemd-networkd removes the routes it did not make from the links it manages when it
 * starts (ManageForeignRoutes, on by default since systemd 246): weft's routes through
 * the uplink would be gone until the node's 30 s check. configs: in the order read (the
 * last [Network] ManageForeignRoutes= wins).
 */
export function networkdCheck(isRunning: boolean, configs: string[], uplink = "the uplink"): Check {
  const what = "systemd-networkd";
  if (!isRunning) return { what, result: "OK", detail: "not running" };
  let manages = true;
  for (const text of configs) {
    let section = "";
    for (const line of text.split("\n").map((l) => l.trim())) {
      if (/^\[.*\]$/.test(line)) section = line;
      const m = section === "[Network]" ? /^ManageForeignRoutes\s*=\s*(\S*)/.exec(line) : null;
      if (m) manages = !/^(no|false|off|0)$/i.test(m[1]);
    }
  }
  if (!manages) return { what, result: "OK", detail: "running; ManageForeignRoutes=no: it leaves weft's routes alone" };
  return { what, result: "WARN", detail: `running, and when it starts it removes the routes it did not make from the links it manages (ManageForeignRoutes, on by default): weft's routes through ${uplink} (direct and CrossSubnet ones, those from external BGP peers) would be gone until the node's 30 s check (at once with systemctl reload weft-node); add /etc/systemd/networkd.conf.d/weft.conf with "[Network]" and "ManageForeignRoutes=no", then systemctl restart systemd-networkd` };
}

/** The checks; datastore: the URL weft node run would use (its BGPConfiguration says which BGP port). */
export async function checkSystem(tunnelDevice = "weft0", datastore = defaultDatastore()): Promise<Check[]> {
  const checks: Check[] = [{ what: "kernel", result: "OK", detail: `${os.type()} ${os.release()}` }];
  const root = process.getuid?.() === 0;
  checks.push({ what: "running as root", result: root ? "OK" : "FAIL", detail: root ? "uid 0" : "weft node run needs root: TUN, routes, raw sockets, iptables and nftables" });
  let addon = true;
  try {
    native();
    checks.push({ what: "native addon", result: "OK", detail: "loaded" });
  } catch (err) {
    addon = false;
    checks.push({ what: "native addon", result: "FAIL", detail: (err as Error).message });
  }
  const weft = kernel.tunHolder(tunnelDevice);
  if (weft) checks.push({ what: "weft node", result: "OK", detail: `running here (pid ${weft.pid}), holding ${tunnelDevice}` });
  if (addon) {
    // A throwaway TUN, as the node opens its own: virtio headers, then TSO.
    const name = `weftchk${process.pid % 1_000_000}`;
    try {
      const fd = native().tunOpen(name, true);
      const tso = native().tunSetOffload(fd, TSO_OFFLOAD);
      native().close(fd);
      checks.push(tso ? { what: "TUN device", result: "OK", detail: "/dev/net/tun with virtio headers and TSO: 64 KiB per read" } : { what: "TUN device", result: "WARN", detail: "the kernel refused TUN TSO offload: one packet per read (slower)" });
    } catch (err) {
      checks.push({ what: "TUN device", result: "FAIL", detail: why(err, " (is /dev/net/tun there, and the tun module loaded?)") });
    } finally {
      try {
        native().tunDelete(name);
      } catch {
        // never made
      }
    }
    try {
      const fd = native().udpOpen("127.0.0.1", 0);
      const gso = native().udpGsoSupported(fd);
      const gro = native().udpSetGro(fd, true);
      native().close(fd);
      const missing = [gso ? "" : "UDP_SEGMENT (GSO)", gro ? "" : "UDP_GRO"].filter(Boolean);
      checks.push(missing.length ? { what: "UDP GSO and GRO", result: "WARN", detail: `the kernel lacks ${missing.join(" and ")} (4.18 and 5.0 have them): VXLAN moves one datagram per slot (slower)` } : { what: "UDP GSO and GRO", result: "OK", detail: "VXLAN sends and receives trains of datagrams" });
    } catch (err) {
      checks.push({ what: "UDP GSO and GRO", result: "FAIL", detail: why(err) });
    }
    try {
      native().close(native().rawOpen(IPPROTO_IPIP));
      checks.push(
        kernel.moduleLoaded("ipip")
          ? { what: "raw IPIP socket", result: "WARN", detail: "the kernel's ipip module is loaded: it also claims IP protocol 4 (tunl0); weft still receives IPIP, but modprobe -r ipip leaves it to one of them" }
          : { what: "raw IPIP socket", result: "OK", detail: "IP protocol 4" },
      );
    } catch (err) {
      checks.push({ what: "raw IPIP socket", result: "FAIL", detail: why(err) });
    }
    checks.push(await portCheck(`UDP ${VXLAN_PORT} (VXLAN)`, "udp", VXLAN_PORT, weft?.pid, "weft's VXLAN cannot receive; remove that device (another overlay, or Calico's vxlan.calico) or use IPIP pools"));
  }
  const ds = await datastoreCheck(datastore);
  checks.push(ds.check);
  if (addon) {
    checks.push(await portCheck(`TCP ${ds.bgpPort} (BGP)`, "tcp", ds.bgpPort, weft?.pid, "weft's BGP cannot listen; stop that daemon, set BGPConfiguration listenPort, or run with --backend vxlan"));
  }
  for (const [cmd, args, need, without] of [
    ["ip", ["-V"], "FAIL", "weft programs routes with it (iproute2)"],
    ["nft", ["-v"], "WARN", "natOutgoing pools cannot masquerade (nftables)"],
    ["iptables", ["-V"], "WARN", "no WEFT-FORWARD and WEFT-INPUT chains: fine unless a firewall drops by policy"],
  ] as const) {
    const r = await command(cmd, [...args]);
    let detail = (r.stdout.split("\n")[0] || r.stderr.split("\n")[0]).trim();
    const other = cmd === "iptables" && !r.missing ? (await iptablesBackends()).find((b) => !b.primary) : undefined;
    if (other) detail += `; ${other.iptables} holds filter rules too: weft's chains go in both (a DROP policy in either drops pod traffic)`;
    checks.push(r.missing ? { what: `${cmd} command`, result: need, detail: `not installed: ${without}` } : { what: `${cmd} command`, result: "OK", detail });
  }
  try {
    accessSync("/proc/sys/net/ipv4/ip_forward", constants.W_OK);
    checks.push({ what: "IPv4 forwarding", result: "OK", detail: "weft turns it on (and on again within 30 s if a sysctl reload turns it off)" });
  } catch {
    checks.push({ what: "IPv4 forwarding", result: "FAIL", detail: `/proc/sys/net/ipv4/ip_forward cannot be written (${root ? "a read-only /proc/sys in a container?" : "needs root"})` });
  }
  const rp = kernel.sysctl("net.ipv4.conf.all.rp_filter");
  checks.push({ what: "reverse-path filtering", result: "OK", detail: filtersReversePath(rp) ? `net.ipv4.conf.all.rp_filter = ${rp}: a node on a datastore answers pods from ${tunnelDevice}'s tunnel address, which passes it; a static node's (--config) ICMP errors are dropped by it (set 0 for one)` : `net.ipv4.conf.all.rp_filter = ${rp ?? "?"}` });
  const nm = networkManager();
  checks.push(networkManagerCheck(nm.running, nm.configs, tunnelDevice));
  const nd = networkd();
  checks.push(networkdCheck(nd.running, nd.configs, await kernel.defaultRouteDevice().catch(() => undefined)));
  return checks;
}

/** The checks as lines, calicoctl-like: what, result, detail. */
export function checksText(checks: Check[]): string {
  const w = Math.max(...checks.map((c) => c.what.length));
  const failed = checks.filter((c) => c.result === "FAIL").length;
  const lines = checks.map((c) => `  ${c.what.padEnd(w)}  ${c.result.padEnd(4)}  ${c.detail}`);
  return `Checking what weft node run needs of this host:\n${lines.join("\n")}\n${failed ? `${failed} check${failed === 1 ? "" : "s"} failed: weft node run will not work here until fixed.` : "System meets the requirements to run a weft node."}\n`;
}
