// The resource kinds weft supports, in Calico's projectcalico.org/v3 shape: one
// schema per kind (defaults included); semantic checks live in validate.ts.
import { z } from "zod";
import { parseCIDR, parseIPv4, parseMAC } from "../dataplane/addr.js";

export const API_VERSION = "projectcalico.org/v3";

const name = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit");

// Labels as Kubernetes (and so Calico) takes them: selectors match them, so a key or
// value no selector could name is refused where it is written.
const labelName = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const dnsSubdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelKey = z.string().refine((k) => {
  const slash = k.lastIndexOf("/");
  return labelName.test(k.slice(slash + 1)) && (slash < 0 || dnsSubdomain.test(k.slice(0, slash)));
}, { message: "label keys are a name of up to 63 letters, digits, '-', '_' or '.' (starting and ending with a letter or digit), optionally after a DNS prefix and '/'" });
const labelValue = z.string().refine((v) => v === "" || labelName.test(v), { message: "label values are empty or up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit" });

export const metadata = z
  .object({
    name,
    labels: z.record(labelKey, labelValue).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    resourceVersion: z.string().optional(),
    uid: z.string().optional(),
    creationTimestamp: z.string().optional(),
  })
  .strict();

const encapMode = z.enum(["Never", "Always", "CrossSubnet"]);
const duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, "must be a duration such as 120s or 2m");
const asNumber = z.number().int().min(1).max(4294967295);

export const ipPoolSpec = z
  .object({
    cidr: z.string().min(1),
    blockSize: z.number().int().optional(),
    ipipMode: encapMode.default("Never"),
    vxlanMode: encapMode.default("Never"),
    natOutgoing: z.boolean().default(false),
    disabled: z.boolean().default(false),
    disableBGPExport: z.boolean().default(false),
    nodeSelector: z.string().default("all()"),
    allowedUses: z.array(z.enum(["Workload", "Tunnel"])).min(1, "must name at least one of Workload, Tunnel").optional(),
    // Calico 3.29+: Manual pools give addresses only to those that ask for them by name.
    assignmentMode: z.enum(["Automatic", "Manual"]).optional(),
  })
  .strict();

// A Node's addresses feed routes and BGP sessions: each must parse, or the resource is refused.
const ipv4Address = z.string().refine((s) => parseIPv4(s) !== undefined, { message: "must be an IPv4 address such as 10.30.0.1" });
// As Calico takes it: with its prefix length, or bare (a /32, so never in another node's subnet).
const ipv4WithPrefix = z.string().refine((s) => parseCIDR(s, false) !== undefined || parseIPv4(s) !== undefined, { message: "must be an IPv4 address with its prefix length, such as 10.30.0.11/24" });
const macAddress = z.string().refine((s) => parseMAC(s) !== undefined, { message: "must be a MAC address such as 66:93:7f:54:d5:53" });

export const nodeSpec = z
  .object({
    bgp: z
      .object({
        ipv4Address: ipv4WithPrefix.optional(),
        ipv6Address: z.string().optional(),
        asNumber: asNumber.optional(),
        routeReflectorClusterID: ipv4Address.optional(),
        // The IPIP tunnel address (see withTunnelFields).
        ipv4IPIPTunnelAddr: ipv4Address.optional(),
      })
      .strict()
      .optional(),
    ipv4VXLANTunnelAddr: ipv4Address.optional(),
    vxlanTunnelMACAddr: macAddress.optional(),
    ipv6VXLANTunnelAddr: z.string().optional(),
    vxlanTunnelMACAddrV6: z.string().optional(),
    addresses: z.array(z.object({ address: z.string(), type: z.string().optional() }).strict()).optional(),
    // Which orchestrator's node this is (Calico on Kubernetes): kept as given.
    orchRefs: z.array(z.object({ nodeName: z.string().optional(), orchestrator: z.string() }).strict()).optional(),
  })
  .strict();

// A TCP MD5 key (RFC 2385). Calico's form is a Secret reference; weft reads it from
// /etc/weft/secrets/NAME/KEY (where a mounted Secret puts it). A plain string is weft's
// own shorthand.
const bgpPassword = z.union([
  z.string().min(1).max(80, "TCP MD5 keys are at most 80 bytes"),
  z.object({ secretKeyRef: z.object({ name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a Secret name"), key: z.string().regex(/^(?!\.\.?$)[-._a-zA-Z0-9]+$/, "must be a Secret key") }).strict() }).strict(),
]);
export type BGPPassword = z.infer<typeof bgpPassword>;

const serviceCIDRs = z.array(z.object({ cidr: z.string() }).strict()).optional();

export const bgpConfigurationSpec = z
  .object({
    asNumber: asNumber.optional(),
    nodeToNodeMeshEnabled: z.boolean().optional(),
    listenPort: z.number().int().min(1).max(65535).optional(),
    // Where BGP listens: None (every address, the default) or NodeIP (the node's address).
    bindMode: z.enum(["None", "NodeIP"]).optional(),
    nodeMeshMaxRestartTime: duration.optional(),
    // The node-to-node mesh's TCP MD5 key, on every mesh session.
    nodeMeshPassword: bgpPassword.optional(),
    // The BGP speaker's log level (Calico: BIRD's).
    logSeverityScreen: z.enum(["Debug", "Info", "Warning", "Error", "Fatal"]).optional(),
    // Named community values, and the communities routes inside a CIDR carry (validate.ts checks the values).
    communities: z.array(z.object({ name: z.string().min(1), value: z.string() }).strict()).optional(),
    prefixAdvertisements: z.array(z.object({ cidr: z.string(), communities: z.array(z.string()).min(1, "must list at least one community") }).strict()).optional(),
    // Kubernetes service address ranges every node announces (and none programs as a route).
    serviceClusterIPs: serviceCIDRs,
    serviceExternalIPs: serviceCIDRs,
    serviceLoadBalancerIPs: serviceCIDRs,
  })
  .strict();

/** The BGPConfiguration fields that list service address ranges. */
export const SERVICE_RANGES = ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"] as const;

/** What a node's own BGPConfiguration, named node.<name>, may set: it overrides the default's (as Calico's). */
export const BGP_NODE_OVERRIDES = ["listenPort", "logSeverityScreen", "prefixAdvertisements"] as const;
export const bgpNodeConfigName = (node: string) => `node.${node}`;

export const bgpPeerSpec = z
  .object({
    peerIP: z.string().optional(),
    asNumber: asNumber.optional(),
    node: z.string().optional(),
    nodeSelector: z.string().optional(),
    peerSelector: z.string().optional(),
    password: bgpPassword.optional(),
    keepaliveTime: duration.optional(),
    maxRestartTime: duration.optional(),
    sourceAddress: z.enum(["UseNodeIP", "None"]).optional(),
    // The gateway this peer is reached by: a /32 route to peerIP through it, so what the
    // peer announces cannot move the route to the peer itself (a multihop peer's loopback).
    reachableBy: ipv4Address.optional(),
    // The AS this node is to this peer, instead of its own (BIRD's local as).
    localASNumber: asNumber.optional(),
    // Routes from this peer may carry our own AS this many times (BIRD's allow local as): loop prevention loosened on purpose.
    numAllowedLocalASNumbers: z.number().int().min(0).max(255).optional(),
    // GTSM (RFC 5082): the peer is at most this many hops away (0: off).
    ttlSecurity: z.number().int().min(0).max(255).optional(),
    // BGPFilters applied to this peer's routes, in order (the first rule that decides wins).
    filters: z.array(name).optional(),
    // Routes this node passes on to this eBGP peer keep the next hop they came with (BIRD's next hop keep), instead of this node.
    keepOriginalNextHop: z.boolean().optional(),
    // Calico 3.31's wider form: Auto (BIRD's default: self toward eBGP, kept toward iBGP), Self (always this node), Keep (always as learned).
    nextHopMode: z.enum(["Auto", "Self", "Keep"]).optional(),
  })
  .strict();

// Calico's BGPFilter: ordered rules on the routes a BGPPeer's sessions import and export.
// A rule matches when every condition it gives holds; the first match decides; a route no
// rule matches is accepted. validate.ts checks the CIDRs and how the conditions combine.
const prefixLengthBound = (max: number) => z.number().int().min(0).max(max).optional();
const bgpFilterRule = (maxLength: number) =>
  z
    .object({
      action: z.enum(["Accept", "Reject"]),
      cidr: z.string().optional(),
      matchOperator: z.enum(["Equal", "NotEqual", "In", "NotIn"]).optional(),
      prefixLength: z.object({ min: prefixLengthBound(maxLength), max: prefixLengthBound(maxLength) }).strict().optional(),
      source: z.enum(["RemotePeers"]).optional(),
      peerType: z.enum(["eBGP", "iBGP"]).optional(),
      communities: z.object({ values: z.array(z.string()).length(1, "must list exactly one community (Calico matches one)") }).strict().optional(),
      asPathPrefix: z.array(asNumber).min(1, "must list at least one AS number").optional(),
      // What an Accept does to the route first: add a community, put AS numbers in front of its path.
      operations: z
        .array(
          z
            .object({
              addCommunity: z.object({ value: z.string() }).strict().optional(),
              prependASPath: z.object({ prefix: z.array(asNumber).min(1, "must list at least one AS number").max(10, "lists at most 10 AS numbers") }).strict().optional(),
            })
            .strict(),
        )
        .min(1, "must list at least one operation")
        .max(10, "lists at most 10 operations")
        .optional(),
    })
    .strict();
export const bgpFilterSpec = z
  .object({
    exportV4: z.array(bgpFilterRule(32)).optional(),
    importV4: z.array(bgpFilterRule(32)).optional(),
    exportV6: z.array(bgpFilterRule(128)).optional(),
    importV6: z.array(bgpFilterRule(128)).optional(),
  })
  .strict();

// Addresses IPAM must not give out (Calico 3.22+): IPv4 or IPv6 addresses or CIDRs.
export const ipReservationSpec = z
  .object({
    reservedCIDRs: z.array(z.string().min(1)).min(1, "must list at least one address or CIDR"),
  })
  .strict();

// The cluster's IPAM settings (Calico's IPAMConfiguration; there is one, named default):
// strictAffinity, never borrow an address from another node's block; maxBlocksPerHost,
// the most blocks a node claims (0: no limit).
export const MAX_BLOCKS_PER_HOST = 2147483647; // Calico's int32
export const ipamConfigurationSpec = z
  .object({
    strictAffinity: z.boolean().optional(),
    maxBlocksPerHost: z.number().int().min(0).max(MAX_BLOCKS_PER_HOST).optional(),
  })
  .strict();

export const KINDS = {
  IPPool: { spec: ipPoolSpec, plural: "ippools", aliases: ["ippool", "ippools", "ipp", "ipps", "pool", "pools"] },
  Node: { spec: nodeSpec, plural: "nodes", aliases: ["node", "nodes", "no", "nos"] },
  BGPConfiguration: { spec: bgpConfigurationSpec, plural: "bgpconfigurations", aliases: ["bgpconfig", "bgpconfigs", "bgpconfiguration", "bgpconfigurations"] },
  BGPPeer: { spec: bgpPeerSpec, plural: "bgppeers", aliases: ["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"] },
  IPReservation: { spec: ipReservationSpec, plural: "ipreservations", aliases: ["ipreservation", "ipreservations", "reservation", "reservations", "ipr"] },
  IPAMConfiguration: { spec: ipamConfigurationSpec, plural: "ipamconfigurations", aliases: ["ipamconfig", "ipamconfigs", "ipamconfiguration", "ipamconfigurations"] },
  BGPFilter: { spec: bgpFilterSpec, plural: "bgpfilters", aliases: ["bgpfilter", "bgpfilters"] },
} as const;

export type Kind = keyof typeof KINDS;
export type IPPoolSpec = z.infer<typeof ipPoolSpec>;
export type NodeSpec = z.infer<typeof nodeSpec>;
export type BGPConfigurationSpec = z.infer<typeof bgpConfigurationSpec>;
export type BGPPeerSpec = z.infer<typeof bgpPeerSpec>;
export type IPReservationSpec = z.infer<typeof ipReservationSpec>;
export type IPAMConfigurationSpec = z.infer<typeof ipamConfigurationSpec>;
export type BGPFilterSpec = z.infer<typeof bgpFilterSpec>;
export type BGPFilterRule = NonNullable<BGPFilterSpec["exportV4"]>[number];
export type Metadata = z.infer<typeof metadata>;

export interface Resource<S = unknown> {
  apiVersion: typeof API_VERSION;
  kind: Kind;
  metadata: Metadata;
  spec: S;
}
export type IPPool = Resource<IPPoolSpec>;
export type NodeResource = Resource<NodeSpec>;
export type BGPConfiguration = Resource<BGPConfigurationSpec>;
export type BGPPeer = Resource<BGPPeerSpec>;
export type IPReservation = Resource<IPReservationSpec>;
export type IPAMConfiguration = Resource<IPAMConfigurationSpec>;
export type BGPFilter = Resource<BGPFilterSpec>;
/** The one IPAMConfiguration's name. */
export const IPAM_CONFIGURATION_NAME = "default";

/** The kind a CLI word names: calicoctl's words for it (ippool, ipp, pools, bgpconfig, bp, no, ...), any case. */
export function kindOf(word: string): Kind | undefined {
  const w = word.toLowerCase();
  return (Object.keys(KINDS) as Kind[]).find((k) => k.toLowerCase() === w || (KINDS[k].aliases as readonly string[]).includes(w));
}

/** Calico's log severities (BGPConfiguration logSeverityScreen, the CNI's log_level), any case, as a logger level. */
export function calicoLogLevel(severity: string): "debug" | "info" | "warn" | "error" | "fatal" | undefined {
  const levels = { debug: "debug", info: "info", warning: "warn", warn: "warn", error: "error", fatal: "fatal", panic: "fatal" } as const;
  const word = severity.toLowerCase();
  return Object.hasOwn(levels, word) ? levels[word as keyof typeof levels] : undefined;
}

/**
 * A Node's underlay IPv4 address (with its prefix, and alone), or undefined if it has
 * none that parses. Everything that reads Node resources goes through this: a Node
 * written around the validator (an older version, a hand edit in etcd) is then treated
 * as not registered yet instead of yielding routes or sessions to a bad address.
 */
export function nodeIPv4(n: NodeResource): { cidr: string; address: string } | undefined {
  const given = n.spec.bgp?.ipv4Address;
  const cidr = given && !given.includes("/") ? `${given}/32` : given;
  if (!cidr || parseCIDR(cidr, false) === undefined) return undefined;
  return { cidr, address: cidr.split("/")[0] };
}

/** An IPReservation entry as a CIDR: a bare address stands for itself alone (/32, or /128 for IPv6). */
export function reservationCIDR(entry: string): string {
  return entry.includes("/") ? entry : `${entry}/${entry.includes(":") ? 128 : 32}`;
}

/** A BGPPeer's peerIP ("a.b.c.d" or "a.b.c.d:port"), or undefined if it is not one. */
export function peerEndpoint(peerIP: string): { address: string; port: number } | undefined {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(peerIP);
  const port = m?.[2] === undefined ? 179 : Number(m[2]);
  if (!m || parseIPv4(m[1]) === undefined || port < 1 || port > 65535) return undefined;
  return { address: m[1], port };
}

/**
 * A Node's spec with its tunnel fields where Calico's node puts them: the address in
 * bgp.ipv4IPIPTunnelAddr when IPIP pools exist, in ipv4VXLANTunnelAddr (with the VTEP
 * MAC) when VXLAN pools do. weft0 holds one address for both, so with both it is in
 * both; with neither (direct routing) weft0 still holds one, kept in the VXLAN fields.
 * A field whose encapsulation is gone is removed.
 */
export function withTunnelFields(spec: NodeResource["spec"], address: string | undefined, mac: string, enc: { ipip: boolean; vxlan: boolean }): NodeResource["spec"] {
  const vxlan = enc.vxlan || !enc.ipip;
  const { ipv4IPIPTunnelAddr: _ipip, ...bgp } = spec.bgp ?? {};
  const { ipv4VXLANTunnelAddr: _addr, vxlanTunnelMACAddr: _mac, ...rest } = spec;
  return {
    ...rest,
    bgp: { ...bgp, ...(enc.ipip && address ? { ipv4IPIPTunnelAddr: address } : {}) },
    ...(vxlan && address ? { ipv4VXLANTunnelAddr: address } : {}),
    ...(vxlan ? { vxlanTunnelMACAddr: mac } : {}),
  };
}

/** The tunnel address a Node declares (either field; see withTunnelFields). */
export function nodeTunnelAddress(n: NodeResource): string | undefined {
  return n.spec.ipv4VXLANTunnelAddr ?? n.spec.bgp?.ipv4IPIPTunnelAddr;
}

/** The VXLAN MAC a Node declares, if it parses. */
export function nodeVtepMAC(n: NodeResource): string | undefined {
  const mac = n.spec.vxlanTunnelMACAddr;
  return mac && parseMAC(mac) ? mac : undefined;
}
