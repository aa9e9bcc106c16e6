// The static-routes node configuration (weft node run --config FILE): one schema,
// one validator, errors that name the field.
import { readFileSync } from "node:fs";
import { parse as parseYAML } from "yaml";
import { z } from "zod";
import { contains, parseCIDR, parseIPv4, parseMAC } from "../dataplane/addr.js";
import { IFNAME } from "../native/iproute.js";

const ipv4 = z.string().refine((s) => parseIPv4(s) !== undefined, { message: "expected an IPv4 address such as 10.30.0.12" });
const addressWithPrefix = z.string().refine((s) => parseCIDR(s, false) !== undefined && parseCIDR(s, false)!.len > 0, {
  message: "expected an address with its prefix length, such as 10.30.0.11/24",
});
const cidr = z.string().refine((s) => parseCIDR(s, true) !== undefined, {
  message: "expected a strictly masked IPv4 CIDR such as 192.168.133.192/26",
});
const mac = z.string().refine((s) => parseMAC(s) !== undefined, { message: "expected a MAC address such as 66:93:7f:54:d5:53" });
export const encapsulation = z.enum(["IPIP", "VXLAN", "None"]);
const ifname = z.string().regex(IFNAME, "expected an interface name of 1-15 letters, digits, '.', '-' or '_'");

export const staticRoute = z
  .object({
    cidr,
    node: z.string().min(1),
    address: ipv4,
    vtepMAC: mac.optional(),
    encapsulation: encapsulation.optional(),
  })
  .strict();

export const staticConfig = z
  .object({
    name: z.string().min(1).max(63),
    address: addressWithPrefix,
    encapsulation: encapsulation.default("IPIP"),
    interface: ifname.optional(),
    tunnelDevice: ifname.default("weft0"),
    mtu: z.number().int().min(576).max(65535).optional(),
    vtepMAC: mac.optional(),
    vni: z.number().int().min(1).max(0xffffff).default(4096),
    vxlanPort: z.number().int().min(1).max(65535).default(4789),
    controlSocket: z.string().min(1).optional(),
    // Each offload can be turned off (kernels with offload bugs exist); all on by default.
    offloads: z
      .object({ tso: z.boolean().default(true), gro: z.boolean().default(true), udpGSO: z.boolean().default(true), udpGRO: z.boolean().default(true) })
      .strict()
      .default({ tso: true, gro: true, udpGSO: true, udpGRO: true }),
    routes: z.array(staticRoute).default([]),
  })
  .strict();

export type StaticConfig = z.infer<typeof staticConfig>;
export type StaticRoute = z.infer<typeof staticRoute>;

export class ConfigError extends Error {}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "");
}

/** Validates parsed YAML/JSON; throws ConfigError naming the first bad field. */
export function validateStaticConfig(doc: unknown, source = "config"): StaticConfig {
  const r = staticConfig.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = fieldPath(issue.path) || "(top level)";
    let msg = issue.message;
    if (issue.code === "unrecognized_keys") msg = `unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) msg = "is required";
    throw new ConfigError(`${source}: ${field}: ${msg}`);
  }
  const cfg = r.data;
  const own = cfg.address.split("/")[0];
  // Next hops must be other nodes, one address per node, and no route may cover a
  // node's underlay address: that would send the tunnel's own packets into the tunnel
  // (a route over this node's subnet replaces its connected route and cuts the host off).
  const seen = new Set<string>();
  const nodeAt = new Map<string, { node: string; i: number }>();
  const addressOf = new Map<string, { address: string; i: number }>();
  cfg.routes.forEach((route, i) => {
    const at = `${source}: routes[${i}]`;
    if (seen.has(route.cidr)) throw new ConfigError(`${at}.cidr: ${route.cidr} is listed twice`);
    seen.add(route.cidr);
    if (route.address === own) throw new ConfigError(`${at}.address: ${route.address} is this node's own address; a route's address is the node that holds the block`);
    const other = nodeAt.get(route.address);
    if (other && other.node !== route.node) throw new ConfigError(`${at}.address: ${route.address} is already node ${other.node}'s address (routes[${other.i}])`);
    nodeAt.set(route.address, { node: route.node, i });
    const prev = addressOf.get(route.node);
    if (prev && prev.address !== route.address) throw new ConfigError(`${at}.address: node ${route.node} is at ${prev.address} in routes[${prev.i}]`);
    addressOf.set(route.node, { address: route.address, i });
  });
  const underlay = [{ who: "this node's address", address: own }, ...[...nodeAt].map(([address, n]) => ({ who: `node ${n.node}'s address`, address }))];
  cfg.routes.forEach((route, i) => {
    const block = parseCIDR(route.cidr)!;
    const covered = underlay.find((u) => contains(block, parseIPv4(u.address)!));
    if (covered) throw new ConfigError(`${source}: routes[${i}].cidr: ${route.cidr} contains ${covered.who} ${covered.address}; routing it through the tunnel would cut the underlay`);
  });
  return cfg;
}

/** The settings a running static node takes from its file again on SIGHUP; the rest are read at start. */
const RELOADABLE = ["routes", "encapsulation", "mtu"] as const;

/**
 * A reload of the routes file: the running settings with the file's routes,
 * encapsulation and mtu (validated again against the running address), and the fields
 * the file changed that only a restart takes.
 */
export function reloadedConfig(running: StaticConfig, next: StaticConfig, source: string): { config: StaticConfig; needRestart: string[] } {
  const live = new Set<string>(RELOADABLE);
  const needRestart = Object.keys(staticConfig.shape).filter((k) => !live.has(k) && JSON.stringify(running[k as keyof StaticConfig]) !== JSON.stringify(next[k as keyof StaticConfig]));
  const config = validateStaticConfig({ ...running, routes: next.routes, encapsulation: next.encapsulation, mtu: next.mtu }, source);
  return { config, needRestart };
}

export function loadStaticConfig(file: string): StaticConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYAML(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  return validateStaticConfig(doc, file);
}

