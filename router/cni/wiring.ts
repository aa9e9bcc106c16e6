// Wires a container the way Calico does: a veth with the host end "cali" + 11 hex of
// sha1, MAC ee:ee:ee:ee:ee:ee, proxy ARP and a /32 route on the host; in the
// container a /32 on eth0, 169.254.1.1 on-link and the default route through it.
// The host end's alias names the attachment that owns it ("<network>.<container ID>"),
// so a late DEL of an earlier container of the same pod, or another network's DEL,
// leaves the current one alone.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { command } from "../native/command.js";
import { ip, ipBatch, setSysctlIfPresent } from "../native/iproute.js";

/**
 * Several ip commands in one process: an ADD costs three processes instead of a dozen.
 * The batch stops at the first failure, which is named with the kernel's reason.
 */
async function batch(lines: string[][], netns?: string): Promise<void> {
  const [failed] = await ipBatch(lines.map((l) => l.join(" ")), { netns });
  if (failed) throw new Error(`ip ${failed.line}${netns ? ` (in ${netns})` : ""}: ${failed.why}`);
}

export const HOST_MAC = "ee:ee:ee:ee:ee:ee";

/** Who may claim a host interface: its owner as written, and any older names for it. */
export type Owners = string | string[];
const ownedBy = (alias: string, owners: Owners) => (Array.isArray(owners) ? owners : [owners]).includes(alias);
export const GATEWAY = "169.254.1.1";

/** cali + the first 11 hex characters of sha1("<namespace>.<pod>") or of the container ID. */
export function hostVethName(args: Record<string, string>, containerID: string): string {
  const key = args.K8S_POD_NAMESPACE && args.K8S_POD_NAME ? `${args.K8S_POD_NAMESPACE}.${args.K8S_POD_NAME}` : containerID;
  return `cali${createHash("sha1").update(key).digest("hex").slice(0, 11)}`;
}

// A host-side sysctl: written directly in our own namespace, through nsenter in another.
async function sysctl(key: string, value: string | number, netns?: string): Promise<void> {
  if (netns) {
    const r = await command("nsenter", [`--net=${netns}`, "sysctl", "-q", "-w", `${key}=${value}`]);
    if (!r.ok) throw new Error(`sysctl ${key}=${value} (in ${netns}): ${r.stderr}`);
    return;
  }
  setSysctlIfPresent(key, value);
}

export interface Wired {
  hostVeth: string;
  hostMAC: string;
  containerMAC: string;
}

/**
 * Wires the container in netns. The host side is the namespace we run in (the CNI
 * plugin), or hostNetns (the lab, wiring a static pod from outside its host).
 */
export async function wire(opts: { netns: string; ifname: string; hostVeth: string; address: string; mtu: number; owner: string; hostNetns?: string }): Promise<Wired> {
  const { netns, ifname, hostVeth, address, mtu, owner, hostNetns } = opts;
  const tmp = `tmp${hostVeth.slice(4, 12)}`;
  // (The owner, network name and container ID, is alphanumeric with . _ - : nothing a batch line splits.)
  await batch([
    ["link", "add", "name", hostVeth, "type", "veth", "peer", "name", tmp],
    ["link", "set", tmp, "netns", netns],
    ["link", "set", hostVeth, "address", HOST_MAC, "mtu", String(mtu), "alias", owner, "up"],
    ["route", "replace", `${address}/32`, "dev", hostVeth, "scope", "link"],
  ], hostNetns);
  await sysctl(`net.ipv4.conf.${hostVeth}.proxy_arp`, 1, hostNetns);
  await sysctl(`net.ipv4.neigh.${hostVeth}.proxy_delay`, 0, hostNetns);
  await sysctl(`net.ipv4.conf.${hostVeth}.forwarding`, 1, hostNetns);
  // Reverse-path filtering, as Calico sets it: a packet whose source is not the pod's is
  // dropped (in loose mode too, all.rp_filter=2: the veth has no address). A node in
  // cluster mode drops, and counts, the same before this check (nft.ts).
  await sysctl(`net.ipv4.conf.${hostVeth}.rp_filter`, 1, hostNetns);
  await batch([
    ["link", "set", tmp, "name", ifname],
    ["link", "set", ifname, "mtu", String(mtu), "up"],
    ["addr", "add", `${address}/32`, "dev", ifname],
    ["route", "add", GATEWAY, "dev", ifname, "scope", "link"],
    ["route", "add", "default", "via", GATEWAY, "dev", ifname],
  ], netns);
  return { hostVeth, hostMAC: HOST_MAC, containerMAC: await containerMAC(netns, ifname) };
}

export async function containerMAC(netns: string, ifname: string): Promise<string> {
  return JSON.parse(await ip(["-j", "link", "show", ifname], netns))[0].address as string;
}

/**
 * Links as this network namespace sees them, through netlink (ip -j): /sys/class/net
 * shows the namespace /sys was mounted in, which is not ours under a bare nsenter
 * (podman in a lab host). A name that does not exist gives none.
 */
async function links(name?: string): Promise<Array<{ ifname: string; ifalias?: string; mtu: number }>> {
  try {
    return JSON.parse((await ip(["-j", "link", "show", ...(name ? ["dev", name] : [])])) || "[]");
  } catch (err) {
    if (/does not exist/.test((err as Error).message)) return [];
    throw err;
  }
}

/** A link's MTU, or undefined when there is no such link here. */
export async function linkMTU(name: string): Promise<number | undefined> {
  return (await links(name))[0]?.mtu;
}

/**
 * The attachment a host interface was wired for (its alias); "" for one wired before
 * weft set aliases, undefined when there is no such interface.
 */
export async function vethOwner(hostVeth: string): Promise<string | undefined> {
  const [l] = await links(hostVeth);
  return l && (l.ifalias ?? "");
}

/** The host interfaces (in this namespace) wired for this attachment, whatever their names. */
export async function vethsOwnedBy(owners: Owners): Promise<string[]> {
  return (await links()).filter((l) => l.ifname.startsWith("cali") && ownedBy(l.ifalias ?? "", owners)).map((l) => l.ifname);
}

/**
 * Removes the host end (the container end goes with it); fine when already gone. With
 * an owner, only when it belongs to that container or to no one known: another
 * container's interface of the same name (the pod's next sandbox) is left alone.
 */
export async function unwire(hostVeth: string, opts: { owner?: Owners; address?: string } = {}): Promise<void> {
  const { owner, address } = opts;
  const current = await vethOwner(hostVeth);
  if (owner !== undefined && current !== undefined && current !== "" && !ownedBy(current, owner)) return;
  if (current !== undefined) await ip(["link", "del", hostVeth]).catch(() => {});
  if (address) await ip(["route", "del", `${address}/32`, "dev", hostVeth]).catch(() => {});
}

/** What CHECK verifies: the host end, the route, and the address in the container. */
export async function check(opts: { netns: string; ifname: string; hostVeth: string; address: string; owner: Owners }): Promise<string | undefined> {
  const owner = await vethOwner(opts.hostVeth);
  if (owner === undefined) return `host interface ${opts.hostVeth} is missing`;
  if (owner !== "" && !ownedBy(owner, opts.owner)) return `host interface ${opts.hostVeth} belongs to ${owner}`;
  const route = await ip(["route", "show", `${opts.address}/32`]);
  if (!route.includes(`dev ${opts.hostVeth}`)) return `host route ${opts.address}/32 dev ${opts.hostVeth} is missing`;
  if (!existsSync(opts.netns)) return `container network namespace ${opts.netns} is gone`;
  const addrs = await ip(["-4", "addr", "show", "dev", opts.ifname], opts.netns).catch(() => "");
  if (!addrs.includes(`${opts.address}/32`)) return `${opts.ifname} in the container does not have ${opts.address}/32`;
  const def = await ip(["route", "show", "default"], opts.netns);
  if (!def.includes(`via ${GATEWAY}`)) return `the container's default route is not via ${GATEWAY}`;
  return undefined;
}
