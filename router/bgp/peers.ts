// Who a node peers with, from the Node list, BGPPeer resources and BGPConfiguration,
// as Calico decides it: a full iBGP mesh among nodes without a route-reflector cluster
// ID (connecting one way: passive toward higher addresses), plus BGPPeers that select
// this node (node, nodeSelector, or global) and name a peer by IP or by peerSelector.
import { readFileSync } from "node:fs";
import path from "node:path";
import { BGP_NODE_OVERRIDES, SERVICE_RANGES, bgpNodeConfigName, calicoLogLevel, nodeIPv4, peerEndpoint, type BGPConfiguration, type BGPFilter, type BGPPassword, type BGPPeer, type NodeResource } from "../resources/kinds.js";
import { selectorOrError, SelectorError } from "../resources/selector.js";
import { ipNum, type PeerConfig } from "./session.js";
import { filtersFor } from "./filters.js";
import { parseCIDR } from "../dataplane/addr.js";

export const DEFAULT_AS = 64512;
export const DEFAULT_BGP_PORT = 179;

export interface BgpSettings {
  as: number;
  meshEnabled: boolean;
  listenPort: number;
  restartTime: number;
  /** BGPConfiguration nodeMeshPassword: the TCP MD5 key of every mesh session. */
  meshPassword?: BGPPassword;
  /** BGPConfiguration bindMode NodeIP: listen on the node's address only (default: every address). */
  bindNodeIP: boolean;
}

/** A duration ("120s", "2m") in whole seconds. */
export function seconds(t: string | undefined, dflt: number): number;
export function seconds(t: string | undefined): number | undefined;
export function seconds(t: string | undefined, dflt?: number): number | undefined {
  const m = t && /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(t);
  if (!m) return dflt;
  return Math.round(Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "s"]);
}

/** Where a BGPPeer password's secretKeyRef is read: /etc/weft/secrets/NAME/KEY. */
export const SECRETS_DIR = "/etc/weft/secrets";

export function readSecret(name: string, key: string): string | undefined {
  try {
    return readFileSync(path.join(SECRETS_DIR, name, key), "utf8").replace(/\r?\n$/, "");
  } catch {
    return undefined;
  }
}

/** What applies to a node: the default BGPConfiguration, with its own node.<name> overrides. */
export function bgpConfigFor(configs: BGPConfiguration[], node?: string): BGPConfiguration["spec"] | undefined {
  const d = configs.find((c) => c.metadata.name === "default")?.spec;
  const own = node === undefined ? undefined : configs.find((c) => c.metadata.name === bgpNodeConfigName(node))?.spec;
  if (!own) return d;
  const merged: BGPConfiguration["spec"] = { ...d };
  for (const k of BGP_NODE_OVERRIDES) if (own[k] !== undefined) (merged as Record<string, unknown>)[k] = own[k];
  return merged;
}

/**
 * The Kubernetes service ranges BGPConfiguration lists (cluster, external and load
 * balancer IPs), IPv4 ones: every node announces them (kube-proxy on each node answers
 * for the addresses in them) and no node programs a route learned for them, as Calico.
 */
export function serviceRanges(spec: BGPConfiguration["spec"] | undefined): string[] {
  const all = SERVICE_RANGES.flatMap((f) => (spec?.[f] ?? []).map((r) => r.cidr));
  return [...new Set(all.filter((c) => parseCIDR(c) !== undefined))];
}

/** BGPConfiguration logSeverityScreen as a log level for the BGP speaker's lines. */
export function bgpLogLevel(configs: BGPConfiguration[], node?: string): "debug" | "info" | "warn" | "error" | "fatal" | undefined {
  const sev = bgpConfigFor(configs, node)?.logSeverityScreen;
  return sev && calicoLogLevel(sev);
}

export function bgpSettings(configs: BGPConfiguration[], node?: string): BgpSettings {
  const d = bgpConfigFor(configs, node);
  return { as: d?.asNumber ?? DEFAULT_AS, meshEnabled: d?.nodeToNodeMeshEnabled ?? true, listenPort: d?.listenPort ?? DEFAULT_BGP_PORT, restartTime: Math.min(seconds(d?.nodeMeshMaxRestartTime, 120), 4095), meshPassword: d?.nodeMeshPassword, bindNodeIP: d?.bindMode === "NodeIP" };
}

/** A password as configured: the text, undefined for none, or an Error naming the secret that cannot be read. */
function passwordOf(p: BGPPassword | undefined, secret: (name: string, key: string) => string | undefined): string | undefined | Error {
  if (p === undefined || typeof p === "string") return p;
  const { name, key } = p.secretKeyRef;
  return secret(name, key) ?? new Error(`its password secret ${path.join(SECRETS_DIR, name, key)} cannot be read`);
}

const addrOf = (n: NodeResource) => nodeIPv4(n)?.address;
const asOf = (n: NodeResource, s: BgpSettings) => n.spec.bgp?.asNumber ?? s.as;

export interface PeerPlan {
  mesh: PeerConfig[];
  other: PeerConfig[];
  /** BGPPeers left out, and why (a password secret that cannot be read), or run without a filter they name that does not exist. */
  problems: string[];
  /** BGPPeer reachableBy: a /32 route to each such peer through its gateway. */
  pinned: Array<{ address: string; via: string; bgpPeer: string }>;
}

export interface PeerSources {
  /** Reads a password secret (default: from SECRETS_DIR). */
  secret?: (name: string, key: string) => string | undefined;
  /** The BGPFilters BGPPeers may name. */
  filters?: BGPFilter[];
}

export function peersFor(me: string, nodes: NodeResource[], bgpPeers: BGPPeer[], s: BgpSettings, { secret = readSecret, filters = [] }: PeerSources = {}): PeerPlan {
  const self = nodes.find((n) => n.metadata.name === me);
  const myAddr = self && addrOf(self);
  const problems: string[] = [];
  const pinned: PeerPlan["pinned"] = [];
  if (!self || !myAddr) return { mesh: [], other: [], problems, pinned };
  const myLabels = self.metadata.labels ?? {};
  const iAmRR = !!self.spec.bgp?.routeReflectorClusterID;
  const nodePeer = (n: NodeResource, type: PeerConfig["type"]): PeerConfig | undefined => {
    const a = addrOf(n);
    if (!a || n.metadata.name === me) return undefined;
    // Between two weft nodes, connect one way: wait for the peer with the higher address.
    const otherRR = !!n.spec.bgp?.routeReflectorClusterID;
    return { address: a, port: s.listenPort, as: asOf(n, s), type, passive: ipNum(myAddr) < ipNum(a), node: n.metadata.name, rrClient: iAmRR && !otherRR ? true : undefined };
  };
  let mesh = !iAmRR
    ? nodes.filter((n) => !n.spec.bgp?.routeReflectorClusterID).map((n) => nodePeer(n, "node-to-node mesh")).filter((p): p is PeerConfig => !!p)
    : [];
  const meshPassword = passwordOf(s.meshPassword, secret);
  if (meshPassword instanceof Error) {
    if (mesh.length) problems.push(`BGPConfiguration(default) nodeMeshPassword: ${meshPassword.message}; the node-to-node mesh sessions are not started`);
    mesh = [];
  } else if (meshPassword !== undefined) mesh = mesh.map((p) => ({ ...p, password: meshPassword }));
  const other: PeerConfig[] = [];
  for (const bp of bgpPeers) {
    const sp = bp.spec;
    // A selector that does not parse (a record written around the validator) leaves
    // this BGPPeer out whole.
    const nodeSel = sp.nodeSelector !== undefined ? selectorOrError(sp.nodeSelector) : undefined;
    const peerSel = sp.peerSelector ? selectorOrError(sp.peerSelector) : undefined;
    if (nodeSel instanceof SelectorError || peerSel instanceof SelectorError) {
      problems.push(`BGPPeer(${bp.metadata.name}): ${(nodeSel instanceof SelectorError ? nodeSel : (peerSel as SelectorError)).message}; its sessions are not started`);
      continue;
    }
    // Session settings of this BGPPeer: password (TCP MD5), keepalive, restart time.
    const password = passwordOf(sp.password, secret);
    if (password instanceof Error) {
      problems.push(`BGPPeer(${bp.metadata.name}): ${password.message}; its sessions are not started`);
      continue;
    }
    // Its filters: one it names that does not exist is left out (as Calico does), and said.
    const named = sp.filters?.length ? filtersFor(sp.filters, filters) : undefined;
    if (named?.missing.length) problems.push(`BGPPeer(${bp.metadata.name}): names BGPFilter ${named.missing.map((m) => `"${m}"`).join(", ")}, which does not exist; its sessions run without ${named.missing.length === 1 ? "it" : "them"}`);
    const session = { password, keepaliveTime: seconds(sp.keepaliveTime), restartTime: sp.maxRestartTime === undefined ? undefined : Math.min(seconds(sp.maxRestartTime, 120), 4095), anySource: sp.sourceAddress === "None" ? true : undefined, ttlSecurity: sp.ttlSecurity || undefined, allowLocalAs: sp.numAllowedLocalASNumbers || undefined, localAs: sp.localASNumber, filters: named?.filters, nextHopMode: sp.keepOriginalNextHop ? ("Keep" as const) : sp.nextHopMode === "Auto" ? undefined : sp.nextHopMode };
    const clean = (p: PeerConfig): PeerConfig => Object.fromEntries(Object.entries({ ...p, ...session }).filter(([, v]) => v !== undefined)) as unknown as PeerConfig;
    const global = !sp.node && !sp.nodeSelector;
    const appliesTo = (n: NodeResource) => global || sp.node === n.metadata.name || (nodeSel !== undefined && nodeSel(n.metadata.labels ?? {}));
    const appliesToMe = appliesTo(self);
    const type: PeerConfig["type"] = global ? "global" : "node specific";
    if (peerSel) {
      // Node-to-node peerings are symmetric: we peer with the nodes it selects when it
      // applies to us, and with the nodes it applies to when it selects us.
      const selected = (n: NodeResource) => peerSel(n.metadata.labels ?? {});
      for (const n of nodes) {
        if ((appliesToMe && selected(n)) || (selected(self) && appliesTo(n))) {
          const p = nodePeer(n, type);
          if (p) other.push(clean(p));
        }
      }
      continue;
    }
    if (!appliesToMe) continue;
    const endpoint = sp.peerIP ? peerEndpoint(sp.peerIP) : undefined;
    if (endpoint) {
      const { address, port } = endpoint;
      if (address === myAddr) continue;
      const node = nodes.find((n) => addrOf(n) === address);
      if (node) {
        const p = nodePeer(node, type);
        if (p) other.push(clean({ ...p, as: sp.asNumber ?? p.as }));
      } else {
        other.push(clean({ address, port, as: sp.asNumber ?? s.as, type, passive: false }));
        if (sp.reachableBy) pinned.push({ address, via: sp.reachableBy, bgpPeer: bp.metadata.name });
      }
    }
  }
  // One session per address: an explicit peering wins over the mesh.
  const explicit = new Set(other.map((p) => p.address));
  const dedup = <T extends { address: string }>(ps: T[]) => ps.filter((p, i) => ps.findIndex((q) => q.address === p.address) === i);
  return { mesh: dedup(mesh.filter((p) => !explicit.has(p.address))), other: dedup(other), problems, pinned: dedup(pinned) };
}
