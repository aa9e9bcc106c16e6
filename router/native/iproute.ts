// The kernel's routing table, links and sysctls, through iproute2 and /proc. All
// host configuration goes through here (the addon holds the packet fds).
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { native } from "./index.js";
import { command } from "./command.js";

/** A Linux interface name as weft accepts it (config files, command lines, CNI_IFNAME). */
export const IFNAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,15}$/;

/** weft's route protocol number (rtnetlink "proto"): weft owns exactly these routes. */
export const WEFT_RT_PROTO = 87;

export interface KernelRoute {
  dst: string; // CIDR, e.g. 192.168.133.192/26
  gateway?: string;
  dev?: string;
  type?: string; // unicast (default), blackhole
  onlink?: boolean;
  /** Priority; 0 (or none) is the kernel's default. */
  metric?: number;
}

/** `ip ARGS`, in another network namespace through nsenter when netns (a path) is given. */
export async function ip(args: string[], netns?: string): Promise<string> {
  const [cmd, argv] = netns ? ["nsenter", [`--net=${netns}`, "ip", ...args]] : ["ip", args];
  const r = await command(cmd, argv, undefined, 64 << 20);
  if (!r.ok) throw new Error(`ip ${args.join(" ")}${netns ? ` (in ${netns})` : ""}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Several ip commands in one process (`ip -batch -`), through nsenter for another
 * namespace. With force every command is tried; without, the batch stops at the first
 * failure. Returns the commands that failed, each with the kernel's reason.
 */
export async function ipBatch(lines: string[], opts: { netns?: string; force?: boolean; family?: "-4" } = {}): Promise<Array<{ index: number; line: string; why: string }>> {
  if (lines.length === 0) return [];
  const flags = [...(opts.family ? [opts.family] : []), ...(opts.force ? ["-force"] : []), "-batch", "-"];
  const [cmd, argv] = opts.netns ? ["nsenter", [`--net=${opts.netns}`, "ip", ...flags]] : ["ip", flags];
  const r = await command(cmd, argv, `${lines.join("\n")}\n`);
  // A failed command makes ip exit 1, and which ones failed is in stderr; no exit status means it never ran.
  if (r.code === undefined) throw new Error(`${cmd} ${argv.join(" ")}: ${r.stderr}`);
  const stderr = r.stderr;
  const failed: Array<{ index: number; line: string; why: string }> = [];
  let message: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^Command failed -:(\d+)/.exec(line);
    if (!m) {
      if (line.trim()) message.push(line.trim());
      continue;
    }
    const index = Number(m[1]) - 1;
    failed.push({ index, line: lines[index] ?? `(line ${index + 1})`, why: message.join("; ") });
    message = [];
  }
  return failed;
}

function withPrefix(dst: string): string {
  if (dst === "default") return "0.0.0.0/0";
  return dst.includes("/") ? dst : `${dst}/32`;
}

/** Routes tagged with weft's protocol in the main table. */
export async function listWeftRoutes(): Promise<KernelRoute[]> {
  const out = await ip(["-j", "-4", "route", "show", "table", "main", "proto", String(WEFT_RT_PROTO)]);
  const rows = JSON.parse(out || "[]") as Array<{ dst: string; gateway?: string; dev?: string; type?: string; flags?: string[]; metric?: number }>;
  return rows.map((r) => ({
    dst: withPrefix(r.dst),
    gateway: r.gateway,
    dev: r.dev,
    type: r.type && r.type !== "unicast" ? r.type : undefined,
    onlink: r.flags?.includes("onlink") || undefined,
    metric: r.metric || undefined,
  }));
}

function routeArgs(r: KernelRoute): string[] {
  const args = r.type ? [r.type, r.dst] : [r.dst];
  if (r.gateway) args.push("via", r.gateway);
  if (r.dev) args.push("dev", r.dev);
  if (r.onlink) args.push("onlink");
  if (r.metric) args.push("metric", String(r.metric));
  args.push("proto", String(WEFT_RT_PROTO));
  return args;
}

const ALREADY_GONE = /No such process|Cannot find/;

/**
 * Replaces and deletes routes in one `ip -batch` process (not one process per route).
 * Every command is tried; a delete of a route that is already gone is what we wanted.
 * Any other failure is reported after the batch, naming each failed command.
 */
export async function changeRoutes(replace: KernelRoute[], remove: KernelRoute[]): Promise<void> {
  const lines = [...replace.map((r) => ["route", "replace", ...routeArgs(r)].join(" ")), ...remove.map((r) => `route del ${r.dst} proto ${WEFT_RT_PROTO}${r.metric ? ` metric ${r.metric}` : ""}`)];
  const failed = (await ipBatch(lines, { family: "-4", force: true })).filter((f) => !(f.index >= replace.length && ALREADY_GONE.test(f.why)));
  if (failed.length) throw new Error(failed.map((f) => `ip ${f.line}: ${f.why}`).join("\n"));
}

export interface LinkInfo {
  name: string;
  mtu: number;
  up: boolean;
  /** Differs when the device was deleted and made again under the same name. */
  ifindex: number;
  /** The driver: "tun" for TUN/TAP, "veth", ... */
  kind?: string;
}

/** An interface as this network namespace sees it (not /sys, which shows the namespace it was mounted in). */
export function linkInfo(name: string): LinkInfo | undefined {
  if (!IFNAME.test(name)) return undefined;
  const l = native().linkGet(name);
  return l ? { name, mtu: l.mtu, up: l.up, ifindex: l.ifindex, kind: l.driver || undefined } : undefined;
}

/** What happened to one link since the last read (`LinkChanges`). */
export interface LinkChange {
  /** Link changes announced (state, MTU, ...). */
  changes: number;
  /** One of them showed it down, or deleted. */
  down: boolean;
  /** IPv4 addresses removed from it. */
  addressesRemoved: number;
}

/**
 * Changes to a few links (at most 4) as the kernel announces them (netlink,
 * RTMGRP_LINK and RTMGRP_IPV4_IFADDR), queued between reads: a link set down and up
 * again between two reads of its flags still shows as down here. Every interface's
 * changes pass through the queue (pods' veths too); when it overflowed, `overflow`
 * says changes were lost, and what became of these links is not known.
 */
export class LinkChanges {
  private fd: number;
  constructor(private readonly names: string[]) {
    this.fd = native().linkEventsOpen();
  }
  read(): { overflow: boolean; links: LinkChange[] } {
    if (this.fd < 0) return { overflow: false, links: this.names.map(() => ({ changes: 0, down: false, addressesRemoved: 0 })) };
    return native().linkEventsRead(this.fd, this.names);
  }
  close(): void {
    if (this.fd >= 0) native().close(this.fd);
    this.fd = -1;
  }
}

/**
 * The process (in this network namespace) that holds TUN device name open, from
 * /proc/PID/fdinfo ("iff:" names a TUN's device): a running node.
 */
export function tunHolder(name: string): { pid: number; command: string } | undefined {
  const ours = netnsOf("self");
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (pid === String(process.pid) || netnsOf(pid) !== ours) continue;
      for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
        if (readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8").includes(`iff:\t${name}\n`)) {
          return { pid: Number(pid), command: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim() };
        }
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

function netnsOf(pid: string): string {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

/** Whether a link is a TUN/TAP device (only those have tun_flags). */
export function isTunTap(name: string): boolean {
  return linkInfo(name)?.kind === "tun";
}

/** Name of the interface holding an IPv4 address (the node's uplink). */
export async function interfaceWithAddress(address: string): Promise<string | undefined> {
  return (await hostAddresses()).get(address);
}

/** This network namespace's interfaces in index order, each with its IPv4 addresses and prefixes (one ip call). */
export async function interfaceAddresses(): Promise<Array<{ name: string; addresses: string[] }>> {
  const links = JSON.parse((await ip(["-j", "-4", "addr", "show"])) || "[]") as Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number }> }>;
  return links.map((l) => ({ name: l.ifname, addresses: (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`) }));
}

/** Every IPv4 address of this network namespace, with the interface that holds it (one ip call). */
export async function hostAddresses(): Promise<Map<string, string>> {
  return new Map((await interfaceAddresses()).flatMap((l) => l.addresses.map((a): [string, string] => [a.split("/")[0], l.name])));
}

/** The device of the IPv4 default route, if there is one. */
export async function defaultRouteDevice(): Promise<string | undefined> {
  const rows = JSON.parse((await ip(["-j", "-4", "route", "show", "default"])) || "[]") as Array<{ dev?: string }>;
  return rows[0]?.dev;
}

/** A device's IPv4 addresses with their prefixes (10.30.0.11/24), first first. */
export async function deviceAddresses(dev: string): Promise<string[]> {
  const links = JSON.parse((await ip(["-j", "-4", "addr", "show", "dev", dev])) || "[]") as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>;
  return (links[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}

/** Makes a device's IPv4 addresses exactly `want` (CIDRs): adds the missing, removes the rest. */
export async function setDeviceAddresses(dev: string, want: string[], have: string[]): Promise<void> {
  for (const a of have.filter((x) => !want.includes(x))) await ip(["-4", "addr", "del", a, "dev", dev]);
  for (const a of want.filter((x) => !have.includes(x))) await ip(["-4", "addr", "replace", a, "dev", dev]);
}

/** The kernel's own route toward an address: its gateway (if any), device and source address. */
export async function routeGet(address: string): Promise<{ gateway?: string; dev?: string; prefsrc?: string } | undefined> {
  try {
    const rows = JSON.parse(await ip(["-j", "-4", "route", "get", address])) as Array<{ gateway?: string; dev?: string; prefsrc?: string }>;
    return rows[0];
  } catch {
    return undefined;
  }
}

/**
 * Underlay gateways toward next hops reached without encapsulation, kept in `known`:
 * the kernel is asked once per distinct address (an address it has no route to yet is
 * asked again next time). A next hop on the uplink's subnet has none (kept as undefined).
 */
export async function learnGateways(addresses: Iterable<string>, known: Map<string, string | undefined>): Promise<void> {
  for (const a of new Set(addresses)) {
    if (known.has(a)) continue;
    const via = await routeGet(a);
    if (via) known.set(a, via.gateway);
  }
}

/** net.ipv4.ip_forward -> /proc/sys/net/ipv4/ip_forward (this network namespace's). */
const sysctlPath = (key: string) => `/proc/sys/${key.replaceAll(".", "/")}`;

export function setSysctl(key: string, value: string | number): void {
  writeFileSync(sysctlPath(key), String(value));
}

/** A sysctl's value as this network namespace sees it (trimmed); undefined if it cannot be read. */
export function sysctl(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), "utf8").trim();
  } catch {
    return undefined;
  }
}

export function setSysctlIfPresent(key: string, value: string | number): void {
  if (existsSync(sysctlPath(key))) setSysctl(key, value);
}

/** Kernel modules that are loaded (for the ipip check). */
export function moduleLoaded(name: string): boolean {
  if (existsSync(`/sys/module/${name}`)) return true;
  try {
    return readFileSync("/proc/modules", "utf8").split("\n").some((l) => l.startsWith(`${name} `));
  } catch {
    return false;
  }
}
