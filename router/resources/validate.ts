// One validator per kind. Messages follow Calico's, so what users search for matches.
import os from "node:os";
import type { z } from "zod";
import { API_VERSION, BGP_NODE_OVERRIDES, IPAM_CONFIGURATION_NAME, KINDS, SERVICE_RANGES, metadata, nodeIPv4, peerEndpoint, reservationCIDR, type BGPConfiguration, type BGPFilter, type BGPPeer, type IPPool, type IPReservation, type Kind, type NodeResource, type Resource } from "./kinds.js";
import { isStrictlyMasked, overlaps, parseAnyCIDR, RESERVED_RANGES } from "./cidr.js";
import { parseSelector, SelectorError } from "./selector.js";
import { parseCommunity, resolveCommunity } from "../bgp/communities.js";

export class ValidationError extends Error {
  constructor(
    readonly resource: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${resource}: ${field ? `${field}: ` : ""}${reason}`);
  }
}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "");
}

/**
 * Calico fields weft knows of but does not do: a manifest carrying one is refused
 * saying so (not as a typo), so nobody believes it took effect.
 */
const CALICO_ONLY: Record<string, string> = {
  ignoredInterfaces: "weft's address detection takes --ip or --interface",
  interface: "weft announces BGP routes only (its blocks, and the routes it passes on or reflects), and none has an interface to match",
  priority: "weft's routes carry no priority (Calico's FelixConfiguration route priorities)",
  setPriority: "weft's routes carry no priority (Calico's FelixConfiguration route priorities)",
};

/**
 * Calico kinds weft does not take, with what to do instead: an export of a whole Calico
 * cluster (calicoctl get ... -o yaml) says which document to drop, and why.
 */
const CALICO_ONLY_KINDS: Record<string, string> = {
  FelixConfiguration: "weft's data-path settings are weft node run's options and WEFT_* variables; MTUs follow the uplink",
  NetworkPolicy: "weft does no network policy",
  GlobalNetworkPolicy: "weft does no network policy",
  StagedNetworkPolicy: "weft does no network policy",
  StagedGlobalNetworkPolicy: "weft does no network policy",
  NetworkSet: "weft does no network policy",
  GlobalNetworkSet: "weft does no network policy",
  HostEndpoint: "weft does no network policy",
  Tier: "weft does no network policy",
  Profile: "weft does no network policy",
  WorkloadEndpoint: "weft-cni keeps a pod's addresses in IPAM, not as endpoints",
  KubeControllersConfiguration: "weft runs no Kubernetes controllers",
  ClusterInformation: "Calico writes it itself",
  CalicoNodeStatus: "weft node status says the same, from the node",
  BlockAffinity: "weft's IPAM keeps block affinities itself (weft ipam show --show-blocks)",
};

/** calicoctl's short words for the kinds above (besides each kind's name and plural). */
const CALICO_ONLY_WORDS: Record<string, string> = { felixconfig: "FelixConfiguration", felixconfigs: "FelixConfiguration", gnp: "GlobalNetworkPolicy", gnps: "GlobalNetworkPolicy", np: "NetworkPolicy", nps: "NetworkPolicy", policy: "NetworkPolicy", policies: "NetworkPolicy", hep: "HostEndpoint", heps: "HostEndpoint", wep: "WorkloadEndpoint", weps: "WorkloadEndpoint", netset: "NetworkSet", netsets: "NetworkSet", globalnetset: "GlobalNetworkSet", globalnetsets: "GlobalNetworkSet", kcc: "KubeControllersConfiguration", caliconodestatuses: "CalicoNodeStatus" };

/** A CLI word naming a Calico kind weft does not have: the kind and what to do instead. */
export function calicoOnlyKind(word: string): { kind: string; instead: string } | undefined {
  const w = word.toLowerCase();
  const kind = (Object.hasOwn(CALICO_ONLY_WORDS, w) ? CALICO_ONLY_WORDS[w] : undefined) ?? Object.keys(CALICO_ONLY_KINDS).find((k) => [k.toLowerCase(), `${k.toLowerCase()}s`, k.toLowerCase().replace(/y$/, "ies")].includes(w));
  return kind ? { kind, instead: CALICO_ONLY_KINDS[kind] } : undefined;
}

function zodReason(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    const calico = issue.keys.find((k) => Object.hasOwn(CALICO_ONLY, k));
    if (calico) return `${calico} is Calico's, and weft does not support it (${CALICO_ONLY[calico]}): remove it`;
    return `unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  }
  // A record key the schema refused (a label key): its own message says what keys may be.
  if (issue.code === "invalid_key") return issue.issues[0]?.message ?? issue.message;
  if (issue.code === "invalid_value") return `must be one of ${issue.values.map(String).join(", ")}`;
  if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) return "is required";
  return issue.message;
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, label: string, prefix: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  // An unknown key's path is the object that holds it (spec.bgp), which says where to look.
  throw new ValidationError(label, [prefix, fieldPath(issue.path)].filter(Boolean).join("."), zodReason(issue));
}

/**
 * This host's node name: the one given, or the hostname in lowercase (as Calico's
 * NODENAME default). Checked with the Node resource's own name rule, so a node never
 * registers (or claims IPAM blocks for) a name that `weft apply` would refuse.
 */
export function nodeName(given?: string): string {
  const name = given ?? os.hostname().trim().toLowerCase();
  parseWith(metadata, { name }, `Node(${name})`, "metadata");
  return name;
}

/**
 * What names a resource: apiVersion, kind and metadata, checked; the spec is not read.
 * Enough to delete one (a file whose spec no longer validates can still be deleted).
 */
export function parseResourceId(doc: unknown): { kind: Kind; metadata: Resource["metadata"]; label: string; d: Record<string, unknown> } {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new ValidationError("document", "", "expected a resource with apiVersion, kind, metadata and spec");
  const d = doc as Record<string, unknown>;
  // What the document calls itself, as far as it says it in words (not a list or a blank).
  const word = (v: unknown, otherwise: string) => {
    const w = typeof v === "string" ? v.trim() : "";
    return w ? (w.length > 63 ? `${w.slice(0, 60)}...` : w) : typeof v === "number" ? String(v) : otherwise;
  };
  const meta = d.metadata as { name?: unknown } | null | undefined;
  const label = `${word(d.kind, "resource")}(${word(typeof meta === "object" && meta !== null ? meta.name : undefined, "?")})`;
  if (d.apiVersion !== API_VERSION) throw new ValidationError(label, "apiVersion", `must be ${API_VERSION}`);
  if (typeof d.kind === "string" && Object.hasOwn(CALICO_ONLY_KINDS, d.kind)) {
    throw new ValidationError(label, "kind", `${d.kind} is Calico's, and weft does not take it (${CALICO_ONLY_KINDS[d.kind]}); remove it from the file (weft takes ${Object.keys(KINDS).join(", ")})`);
  }
  if (typeof d.kind !== "string" || !Object.hasOwn(KINDS, d.kind)) throw new ValidationError(label, "kind", `must be one of ${Object.keys(KINDS).join(", ")}`);
  // status is what Calico's tools print of a resource's state (a Node's podCIDRs): not ours to set.
  for (const k of Object.keys(d)) if (!["apiVersion", "kind", "metadata", "spec", "status"].includes(k)) throw new ValidationError(label, "", `unknown field "${k}"`);
  return { kind: d.kind as Kind, metadata: parseWith(metadata, d.metadata, label, "metadata"), label, d };
}

/** Checks the shape of one manifest document and fills defaults (no cross-resource checks). */
export function parseResource(doc: unknown): Resource {
  const { kind, metadata: meta, label, d } = parseResourceId(doc);
  const spec = parseWith(KINDS[kind].spec as z.ZodType<unknown>, d.spec ?? {}, label, "spec");
  const res: Resource = { apiVersion: API_VERSION, kind, metadata: meta, spec };
  if (kind === "IPPool") validateIPPoolShape(res as IPPool);
  if (kind === "BGPPeer" || kind === "Node" || kind === "BGPConfiguration") validateSelectors(res);
  if (kind === "BGPPeer") validateBGPPeer(res as BGPPeer);
  if (kind === "BGPConfiguration") validateBGPConfiguration(res as BGPConfiguration);
  if (kind === "IPReservation") validateIPReservation(res as IPReservation);
  if (kind === "BGPFilter") validateBGPFilter(res as BGPFilter);
  if (kind === "IPAMConfiguration" && meta.name !== IPAM_CONFIGURATION_NAME) throw new ValidationError(label, "metadata.name", `must be "${IPAM_CONFIGURATION_NAME}": the cluster has one IPAMConfiguration`);
  return res;
}

/** Who a BGPPeer applies to and who it peers with: one way each, and a peer address that is one. */
function validateBGPPeer(peer: BGPPeer): void {
  const s = peer.spec;
  const label = `BGPPeer(${peer.metadata.name})`;
  if (s.node && s.nodeSelector) throw new ValidationError(label, "spec", "cannot set both node and nodeSelector");
  if (s.peerIP && s.peerSelector) throw new ValidationError(label, "spec", "cannot set both peerIP and peerSelector");
  if (!s.peerSelector) {
    if (!s.peerIP) throw new ValidationError(label, "spec.peerIP", "must be set when peerSelector is not set");
    if (s.asNumber === undefined) throw new ValidationError(label, "spec.asNumber", "must be set when peerSelector is not set");
  }
  if (s.peerIP && !peerEndpoint(s.peerIP)) {
    throw new ValidationError(label, "spec.peerIP", `"${s.peerIP}" is not an IPv4 address (optionally with :port); weft peers over IPv4`);
  }
  if (s.reachableBy !== undefined && (!s.peerIP || peerEndpoint(s.peerIP)?.address === s.reachableBy)) {
    throw new ValidationError(label, "spec.reachableBy", s.peerIP ? "is the gateway toward peerIP, not peerIP itself" : "is the gateway toward peerIP: set peerIP");
  }
  if (s.keepOriginalNextHop && s.nextHopMode !== undefined) throw new ValidationError(label, "spec", "keepOriginalNextHop and nextHopMode cannot both be set (keepOriginalNextHop: true is nextHopMode: Keep)");
}

const COMMUNITY_FORM = "a value such as 64512:100 (each part 0-65535) or 64512:100:200 (each part 0-4294967295)";

/**
 * A node's own BGPConfiguration (node.<name>) sets only what it may override. Community
 * names once each with a value that is one; each advertisement a CIDR with communities
 * that resolve (in a node's own, a name may be the default's, so only values are checked).
 */
function validateBGPConfiguration(c: BGPConfiguration): void {
  const label = `BGPConfiguration(${c.metadata.name})`;
  const perNode = c.metadata.name.startsWith("node.");
  if (perNode) {
    const other = Object.keys(c.spec).find((k) => !(BGP_NODE_OVERRIDES as readonly string[]).includes(k));
    if (other) throw new ValidationError(label, `spec.${other}`, `a node's own BGPConfiguration (node.<name>) may set only ${BGP_NODE_OVERRIDES.join(", ")}; set ${other} in BGPConfiguration(default)${other === "asNumber" ? ", or for one node in its Node (spec.bgp.asNumber)" : ""}`);
  }
  const names = new Set<string>();
  c.spec.communities?.forEach((k, i) => {
    if (names.has(k.name)) throw new ValidationError(label, `spec.communities[${i}].name`, `"${k.name}" is defined twice`);
    names.add(k.name);
    if (!parseCommunity(k.value)) throw new ValidationError(label, `spec.communities[${i}].value`, `"${k.value}" is not ${COMMUNITY_FORM}`);
  });
  // A network given at field: it parses and has no host bits.
  const network = (field: string, text: string, example: string) => {
    const cidr = parseAnyCIDR(text);
    if (!cidr) throw new ValidationError(label, field, `"${text}" is not an IP network such as ${example}`);
    if (!isStrictlyMasked(cidr)) throw new ValidationError(label, field, `"${text}" has bits set past its prefix length`);
  };
  for (const field of SERVICE_RANGES) c.spec[field]?.forEach((r, i) => network(`spec.${field}[${i}].cidr`, r.cidr, "10.96.0.0/12"));
  c.spec.prefixAdvertisements?.forEach((a, i) => {
    network(`spec.prefixAdvertisements[${i}].cidr`, a.cidr, "192.168.0.0/16");
    a.communities.forEach((w, j) => {
      if (!resolveCommunity(w, c.spec) && !(perNode && !w.includes(":") && w.length > 0)) throw new ValidationError(label, `spec.prefixAdvertisements[${i}].communities[${j}]`, `"${w}" is neither a name in spec.communities nor ${COMMUNITY_FORM}`);
    });
  });
}

/**
 * Each rule's conditions as Calico combines them: a CIDR of the list's family, masked,
 * with its matchOperator (and neither without the other); prefixLength only with In or
 * NotIn, min not above max; a community value that is one.
 */
function validateBGPFilter(f: BGPFilter): void {
  const label = `BGPFilter(${f.metadata.name})`;
  for (const list of ["exportV4", "importV4", "exportV6", "importV6"] as const) {
    const family = list.endsWith("V4") ? 4 : 6;
    f.spec[list]?.forEach((r, i) => {
      const at = `spec.${list}[${i}]`;
      if ((r.cidr === undefined) !== (r.matchOperator === undefined)) throw new ValidationError(label, at, "cidr and matchOperator go together: give both or neither");
      const cidr = r.cidr === undefined ? undefined : parseAnyCIDR(r.cidr);
      if (r.cidr !== undefined) {
        if (!cidr || cidr.family !== family) throw new ValidationError(label, `${at}.cidr`, `"${r.cidr}" is not an IPv${family} network such as ${family === 4 ? "10.0.0.0/8" : "fd00::/8"} (${list} rules match IPv${family} routes)`);
        if (!isStrictlyMasked(cidr)) throw new ValidationError(label, `${at}.cidr`, `"${r.cidr}" has bits set past its prefix length`);
      }
      if (r.prefixLength) {
        if (!cidr || (r.matchOperator !== "In" && r.matchOperator !== "NotIn")) throw new ValidationError(label, `${at}.prefixLength`, "goes with a cidr and matchOperator In or NotIn (Equal compares the whole prefix)");
        const { min, max } = r.prefixLength;
        if (min !== undefined && max !== undefined && min > max) throw new ValidationError(label, `${at}.prefixLength`, `min ${min} is above max ${max}`);
        // A route In the CIDR is at least as long as it (a lower min counts as the CIDR's length, as in Calico).
        if (max !== undefined && max < cidr.len) throw new ValidationError(label, `${at}.prefixLength.max`, `${max} is shorter than the CIDR's own /${cidr.len}: no route In it is that short`);
      }
      const community = r.communities?.values[0];
      if (community !== undefined && !parseCommunity(community)) throw new ValidationError(label, `${at}.communities.values[0]`, `"${community}" is not ${COMMUNITY_FORM}`);
      if (r.operations && r.action !== "Accept") throw new ValidationError(label, `${at}.operations`, "go with action Accept only (a rejected route is not changed)");
      r.operations?.forEach((op, j) => {
        if (Object.keys(op).length !== 1) throw new ValidationError(label, `${at}.operations[${j}]`, "must set exactly one of addCommunity, prependASPath");
        if (op.addCommunity && !parseCommunity(op.addCommunity.value)) throw new ValidationError(label, `${at}.operations[${j}].addCommunity.value`, `"${op.addCommunity.value}" is not ${COMMUNITY_FORM}`);
      });
    });
  }
}

/** Each reserved entry is an address or a CIDR (IPv6 ones are kept; weft assigns IPv4 only). */
function validateIPReservation(r: IPReservation): void {
  r.spec.reservedCIDRs.forEach((c, i) => {
    if (!parseAnyCIDR(reservationCIDR(c))) throw new ValidationError(`IPReservation(${r.metadata.name})`, `spec.reservedCIDRs[${i}]`, `"${c}" is not an IP address or CIDR such as 192.168.2.3 or 10.0.2.0/28`);
  });
}

const poolLabel = (p: IPPool) => `IPPool(${p.metadata.name})`;

/** Checks an IPPool on its own and fills its block size default. */
function validateIPPoolShape(pool: IPPool): void {
  const s = pool.spec;
  const label = poolLabel(pool);
  const cidr = parseAnyCIDR(s.cidr);
  if (!cidr) throw new ValidationError(label, "spec.cidr", `"${s.cidr}" is not an IP network such as 192.168.0.0/16`);
  if (!isStrictlyMasked(cidr)) throw new ValidationError(label, "spec.cidr", "IPPool CIDR must be strictly masked");
  s.blockSize ??= cidr.family === 4 ? 26 : 122;
  const ok = cidr.family === 4 ? s.blockSize >= 20 && s.blockSize <= 32 : s.blockSize >= 116 && s.blockSize <= 128;
  if (!ok) throw new ValidationError(label, "spec.blockSize", "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools");
  if (cidr.len > s.blockSize) throw new ValidationError(label, "spec.cidr", "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.");
  if (s.ipipMode !== "Never" && s.vxlanMode !== "Never") throw new ValidationError(label, "spec", "ipipMode and vxlanMode cannot both be enabled");
  if (cidr.family === 6 && s.ipipMode !== "Never") throw new ValidationError(label, "spec.ipipMode", "IPIP is not supported on IPv6 pools");
  const reserved = RESERVED_RANGES.find((r) => overlaps(cidr, r.net));
  if (reserved) throw new ValidationError(label, "spec.cidr", `IPPool CIDR overlaps with ${reserved.what} range ${reserved.cidr}`);
  try {
    parseSelector(s.nodeSelector);
  } catch (err) {
    throw new ValidationError(label, "spec.nodeSelector", (err as SelectorError).message);
  }
}

function validateSelectors(res: Resource): void {
  const spec = res.spec as Record<string, unknown>;
  for (const f of ["nodeSelector", "peerSelector"]) {
    if (typeof spec[f] !== "string") continue;
    try {
      parseSelector(spec[f] as string);
    } catch (err) {
      throw new ValidationError(`${res.kind}(${res.metadata.name})`, `spec.${f}`, (err as SelectorError).message);
    }
  }
}

/**
 * Checks a pool against the pools that will exist alongside it, the one it replaces,
 * and the nodes' own addresses (a pool holding one would give pods host addresses).
 */
export function validateIPPoolChange(pool: IPPool, others: IPPool[], previous?: IPPool, nodes: NodeResource[] = []): void {
  const label = poolLabel(pool);
  if (previous) {
    if (previous.spec.cidr !== pool.spec.cidr) throw new ValidationError(label, "spec.cidr", "IPPool CIDR cannot be modified");
    if (previous.spec.blockSize !== pool.spec.blockSize) throw new ValidationError(label, "spec.blockSize", "IPPool BlockSize cannot be modified");
  }
  const mine = parseAnyCIDR(pool.spec.cidr)!;
  for (const o of others) {
    if (o.metadata.name === pool.metadata.name) continue;
    if (overlaps(mine, parseAnyCIDR(o.spec.cidr)!)) {
      throw new ValidationError(label, "spec.cidr", `IPPool(${pool.metadata.name}) CIDR overlaps with IPPool(${o.metadata.name}) CIDR ${o.spec.cidr}`);
    }
  }
  for (const n of nodes) {
    const host = nodeIPv4(n);
    if (host && overlaps(mine, parseAnyCIDR(`${host.address}/32`)!)) {
      throw new ValidationError(label, "spec.cidr", `IPPool CIDR ${pool.spec.cidr} contains Node(${n.metadata.name})'s address ${host.address}: pods would be given host addresses; use a range the hosts' network does not use`);
    }
  }
}
