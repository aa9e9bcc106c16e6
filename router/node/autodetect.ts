// How a node finds its underlay address, as Calico's node does: IP (an address, with or
// without its prefix, or "autodetect") and IP_AUTODETECTION_METHOD (first-found,
// can-reach=, interface=, skip-interface=, cidr=). weft's own default, when no method is
// named, is the address of the default route's interface. Host facts come in through
// HostView, so the choice is tested without root.
import { contains, formatCIDR, parseCIDR, parseIPv4, type Prefix } from "../dataplane/addr.js";
import { ConfigError } from "./config.js";

export type AutodetectionMethod =
  | { kind: "default-route" }
  | { kind: "first-found" }
  | { kind: "can-reach"; destination: string }
  | { kind: "interface"; include: RegExp[] }
  | { kind: "skip-interface"; exclude: RegExp[] }
  | { kind: "cidr"; cidrs: Prefix[] };

/** Interfaces first-found and skip-interface never pick (Calico's list): bridges, veths, tunnels, loopback. */
export const EXCLUDED_INTERFACES = [
  "^docker.*", "^cbr.*", "^dummy.*", "^virbr.*", "^lxcbr.*", "^veth.*", "^lo", "^cali.*", "^tunl.*", "^flannel.*", "^kube-ipvs.*", "^cni.*",
  "^vxlan\\.calico.*", "^vxlan-v6\\.calico.*", "^wireguard\\.cali.*", "^wg-v6\\.cali.*", "^nodelocaldns.*", "^podman.*",
].map((r) => new RegExp(r));

export const METHODS_HELP = "first-found, can-reach=DESTINATION, interface=REGEX[,REGEX], skip-interface=REGEX[,REGEX] or cidr=CIDR[,CIDR]";

/** What the node needs to know of the host to pick its address. */
export interface HostView {
  /** IPv4 interfaces in index order, each with its addresses (10.30.0.11/24). */
  interfaces(): Promise<Array<{ name: string; addresses: string[] }>>;
  defaultRouteDevice(): Promise<string | undefined>;
  /** The kernel's route toward an address: its device and the source address it would use. */
  routeGet(address: string): Promise<{ dev?: string; prefsrc?: string } | undefined>;
  /** A host name's IPv4 address. */
  resolve(name: string): Promise<string>;
}

export interface AddressRequest {
  /** An address (10.30.0.11/24, or bare: its prefix is taken from the interface holding it), or "autodetect". */
  ip?: string;
  ipFrom?: string;
  interface?: string;
  method?: string;
  methodFrom?: string;
  /** weft's own TUN holds a tunnel address: never the underlay. */
  tunnelDevice: string;
}

export interface DetectedAddress {
  cidr: string;
  uplink: string;
  /** How it was found, for the log. */
  how: string;
}

const list = (text: string) => text.split(/\s*,\s*/).filter((s) => s !== "");

/** Parses an autodetection method, or says what is wrong with it. */
export function parseMethod(text: string, from = "IP_AUTODETECTION_METHOD"): AutodetectionMethod {
  const t = text.trim();
  if (t === "" || t === "first-found") return { kind: "first-found" };
  if (t === "kubernetes-internal-ip") throw new ConfigError(`${from}: kubernetes-internal-ip reads the Kubernetes Node object, which weft does not; use ${METHODS_HELP}`);
  const m = /^(can-reach|interface|skip-interface|cidr)=(.*)$/.exec(t);
  if (!m) throw new ConfigError(`${from}: "${text}" is not an autodetection method; use ${METHODS_HELP}`);
  const [, kind, value] = m;
  const items = list(value);
  if (items.length === 0) throw new ConfigError(`${from}: ${kind}= needs a value, such as ${kind === "can-reach" ? "can-reach=10.30.0.1" : kind === "cidr" ? "cidr=10.30.0.0/24" : `${kind}=eth.*`}`);
  if (kind === "can-reach") {
    if (items.length > 1 || /\s/.test(value.trim())) throw new ConfigError(`${from}: can-reach= takes one address or host name (got "${value}")`);
    return { kind, destination: items[0] };
  }
  if (kind === "cidr") {
    return {
      kind,
      cidrs: items.map((c) => {
        const p = parseCIDR(c, false);
        if (!p) throw new ConfigError(`${from}: cidr= "${c}" is not an IPv4 CIDR such as 10.30.0.0/24`);
        return p;
      }),
    };
  }
  const regexes = items.map((r) => {
    try {
      return new RegExp(r);
    } catch (err) {
      throw new ConfigError(`${from}: ${kind}= "${r}" is not a regular expression (${(err as Error).message})`);
    }
  });
  return kind === "interface" ? { kind, include: regexes } : { kind: "skip-interface", exclude: regexes };
}

/** An address a node can be reached at: not loopback, link-local, multicast, broadcast or 0.0.0.0 (Go's IsGlobalUnicast). */
function globalUnicast(address: string): boolean {
  const a = parseIPv4(address);
  if (a === undefined) return false;
  const first = a >>> 24;
  return first !== 0 && first !== 127 && first < 224 && !contains({ addr: 0xa9fe0000, len: 16 }, a);
}

/** The node's underlay address and interface, from --ip, --interface and the autodetection method. */
export async function detectNodeAddress(req: AddressRequest, host: HostView): Promise<DetectedAddress> {
  const ipFrom = req.ipFrom ?? "--ip";
  const methodFrom = req.methodFrom ?? "--ip-autodetection-method";
  const ifaces = (await host.interfaces()).filter((i) => i.name !== req.tunnelDevice);
  if (req.interface !== undefined && !ifaces.some((i) => i.name === req.interface)) {
    throw new ConfigError(`--interface: ${req.interface} does not exist on this host, or has no IPv4 address`);
  }
  const given = req.ip?.trim();
  if (given && given !== "autodetect") {
    if (given === "none") throw new ConfigError(`${ipFrom}: weft routes over IPv4 and needs an IPv4 address (none is not supported)`);
    const withPrefix = parseCIDR(given, false);
    if (!withPrefix && parseIPv4(given) === undefined) throw new ConfigError(`${ipFrom}: expected an address such as 10.30.0.11/24 (or 10.30.0.11, or autodetect); got "${given}"`);
    const bare = given.split("/")[0];
    const holder = ifaces.find((i) => (req.interface === undefined || i.name === req.interface) && i.addresses.some((a) => a.split("/")[0] === bare));
    if (!holder) throw new ConfigError(`${ipFrom}: ${bare} is on no ${req.interface ? `address of ${req.interface}` : "interface of this host"}; fix it${req.interface ? "" : " or pass --interface"}`);
    // A bare address takes its prefix from the interface (as Calico does), so CrossSubnet sees the subnet.
    const cidr = withPrefix ? given : holder.addresses.find((a) => a.split("/")[0] === bare)!;
    return { cidr, uplink: req.interface ?? holder.name, how: withPrefix ? `given (${ipFrom})` : `given (${ipFrom}), prefix from ${holder.name}` };
  }
  if (req.interface !== undefined && req.method !== undefined) {
    throw new ConfigError(`--interface and ${methodFrom} both choose the address: give one (interface=${req.interface} is the method's form)`);
  }
  const method: AutodetectionMethod = req.interface !== undefined ? { kind: "interface", include: [new RegExp(`^${req.interface.replace(/[.]/g, "\\.")}$`)] } : req.method !== undefined ? parseMethod(req.method, methodFrom) : { kind: "default-route" };
  const firstOn = (pick: (name: string) => boolean, cidrs?: Prefix[]) => {
    for (const i of ifaces) {
      if (!pick(i.name)) continue;
      const a = i.addresses.find((c) => globalUnicast(c.split("/")[0]) && (!cidrs || cidrs.some((p) => contains(p, parseIPv4(c.split("/")[0])!))));
      if (a) return { cidr: a, uplink: i.name };
    }
    return undefined;
  };
  const excluded = (name: string, more: RegExp[] = []) => [...EXCLUDED_INTERFACES, ...more].some((r) => r.test(name));
  switch (method.kind) {
    case "default-route": {
      const dev = await host.defaultRouteDevice();
      if (!dev) throw new ConfigError(`cannot autodetect the node address: no default route; pass --ip ADDRESS/PREFIX or ${methodFrom} (${METHODS_HELP})`);
      const found = firstOn((n) => n === dev);
      if (!found) throw new ConfigError(`cannot autodetect the node address: ${dev} (the default route's interface) has no usable IPv4 address; pass --ip ADDRESS/PREFIX or ${methodFrom}`);
      return { ...found, how: "the default route's interface" };
    }
    case "first-found": {
      const found = firstOn((n) => !excluded(n));
      if (!found) throw new ConfigError(`${methodFrom} first-found: no interface other than bridges, veths, tunnels and loopback has a usable IPv4 address`);
      return { ...found, how: "first-found" };
    }
    case "skip-interface": {
      const found = firstOn((n) => !excluded(n, method.exclude));
      if (!found) throw new ConfigError(`${methodFrom} skip-interface=: every interface with a usable IPv4 address is skipped (${method.exclude.map((r) => r.source).join(", ")}, or Calico's defaults)`);
      return { ...found, how: `skip-interface=${method.exclude.map((r) => r.source).join(",")}` };
    }
    case "interface": {
      const found = firstOn((n) => method.include.some((r) => r.test(n)));
      const names = method.include.map((r) => r.source).join(",");
      if (!found) {
        const matching = ifaces.filter((i) => method.include.some((r) => r.test(i.name))).map((i) => i.name);
        throw new ConfigError(req.interface !== undefined ? `--interface: ${req.interface} has no usable IPv4 address; pass --ip ADDRESS/PREFIX` : `${methodFrom} interface=${names}: ${matching.length ? `${matching.join(", ")} match but have no usable IPv4 address` : `no interface with an IPv4 address matches (those are ${ifaces.filter((i) => i.addresses.length).map((i) => i.name).join(", ")})`}`);
      }
      return { ...found, how: req.interface !== undefined ? "--interface" : `interface=${names}` };
    }
    case "cidr": {
      const found = firstOn(() => true, method.cidrs);
      const cidrs = method.cidrs.map(formatCIDR).join(",");
      if (!found) throw new ConfigError(`${methodFrom} cidr=${cidrs}: no interface has an address in ${method.cidrs.length > 1 ? "any of them" : "it"}`);
      return { ...found, how: `cidr=${cidrs}` };
    }
    case "can-reach": {
      let dest = method.destination;
      if (parseIPv4(dest) === undefined) {
        try {
          dest = await host.resolve(dest);
        } catch (err) {
          throw new ConfigError(`${methodFrom} can-reach=${method.destination}: cannot resolve it (${(err as Error).message})`);
        }
      }
      const via = await host.routeGet(dest);
      if (!via?.dev || !via.prefsrc) throw new ConfigError(`${methodFrom} can-reach=${method.destination}: this host has no route to ${dest}`);
      const holder = ifaces.find((i) => i.addresses.some((a) => a.split("/")[0] === via.prefsrc));
      const cidr = holder?.addresses.find((a) => a.split("/")[0] === via.prefsrc);
      if (!holder || !cidr || !globalUnicast(via.prefsrc)) throw new ConfigError(`${methodFrom} can-reach=${method.destination}: the route to ${dest} leaves from ${via.prefsrc} on ${via.dev}, which is not an underlay address`);
      return { cidr, uplink: holder.name, how: `can-reach=${method.destination}` };
    }
  }
}
