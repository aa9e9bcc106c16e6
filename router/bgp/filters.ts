// Calico's BGPFilter on a BGPPeer's sessions: ordered rules on the routes imported from
// and exported to that peer, as Calico's BIRD filter functions run them. The rules of
// the peer's filters, in the order it names them, are one list; the first rule whose
// conditions all hold decides (Accept, after its operations, or Reject); a route no
// rule matches is accepted.
// weft carries IPv4 routes only, so the V4 lists are the ones that take effect.
//
// One difference from Calico, by design: an export Accept chooses among the routes weft
// would send that peer anyway (its blocks, and on a route reflector what it reflects);
// it does not make weft pass on routes it never sends (weft is not a transit router).
import { parseCIDR, within, type Prefix } from "../dataplane/addr.js";
import type { BGPFilter, BGPFilterRule } from "../resources/kinds.js";
import { addCommunities, parseCommunity } from "./communities.js";
import { prependPath } from "./rib.js";
import type { Attributes } from "./wire.js";

/** The rules a session runs, each direction one list (the filters' V4 rules, in order). */
export interface SessionFilters {
  names: string[];
  import: BGPFilterRule[];
  export: BGPFilterRule[];
}

/** What a rule can look at in a route. */
export interface FilterRoute {
  prefix: Prefix;
  /** Learned from a BGP peer (source RemotePeers), not one of this node's own. */
  fromPeer: boolean;
  attrs: Pick<Attributes, "asPath" | "communities" | "largeCommunities">;
}

/** A BGPPeer's filters by name: the rules, and the names that name no BGPFilter. */
export function filtersFor(names: string[], all: BGPFilter[]): { filters: SessionFilters; missing: string[] } {
  const found = names.map((n) => all.find((f) => f.metadata.name === n));
  return {
    filters: { names, import: found.flatMap((f) => f?.spec.importV4 ?? []), export: found.flatMap((f) => f?.spec.exportV4 ?? []) },
    missing: names.filter((_, i) => !found[i]),
  };
}

/** BIRD's net ~ [cidr{lo,hi}]: inside the CIDR, with a length in range (by default the CIDR's own up to 32). */
function inCIDR(r: BGPFilterRule, c: Prefix, p: Prefix): boolean {
  const lo = Math.max(c.len, r.prefixLength?.min ?? 0);
  const hi = Math.min(32, r.prefixLength?.max ?? 32);
  return within(p, c) && p.len >= lo && p.len <= hi;
}

function matches(r: BGPFilterRule, route: FilterRoute, ibgp: boolean): boolean {
  if (r.cidr !== undefined && r.matchOperator !== undefined) {
    const c = parseCIDR(r.cidr, false);
    if (!c) return false;
    const p = route.prefix;
    const equal = p.len === c.len && p.addr === c.addr;
    const hit = { Equal: equal, NotEqual: !equal, In: inCIDR(r, c, p), NotIn: !inCIDR(r, c, p) }[r.matchOperator];
    if (!hit) return false;
  }
  if (r.source === "RemotePeers" && !route.fromPeer) return false;
  if (r.peerType && (r.peerType === "iBGP") !== ibgp) return false;
  const community = r.communities && parseCommunity(r.communities.values[0]);
  if (community) {
    const has = "standard" in community ? (route.attrs.communities ?? []).includes(community.standard) : (route.attrs.largeCommunities ?? []).some((l) => l.every((x, i) => x === community.large[i]));
    if (!has) return false;
  }
  if (r.asPathPrefix) {
    const path = (route.attrs.asPath ?? []).flatMap((s) => s.asns);
    if (!r.asPathPrefix.every((as, i) => path[i] === as)) return false;
  }
  return true;
}

/**
 * The route's attributes after the rules, or undefined if they reject it: the first rule
 * that matches decides, and an Accept's operations change the route first (communities
 * added once each; AS numbers put in front of its path, in the order given). No rule
 * matches: it passes unchanged.
 */
export function applyRules(rules: BGPFilterRule[], route: FilterRoute, ibgp: boolean): FilterRoute["attrs"] | undefined {
  const r = rules.find((x) => matches(x, route, ibgp));
  if (!r) return route.attrs;
  if (r.action === "Reject") return undefined;
  let attrs = route.attrs;
  for (const op of r.operations ?? []) {
    const c = op.addCommunity && parseCommunity(op.addCommunity.value);
    if (c) attrs = addCommunities(attrs, "standard" in c ? { communities: [c.standard] } : { largeCommunities: [c.large] });
    if (op.prependASPath) attrs = { ...attrs, asPath: prependPath(attrs.asPath, op.prependASPath.prefix) };
  }
  return attrs;
}

/** Whether the rules let a route through. */
export function accepts(rules: BGPFilterRule[], route: FilterRoute, ibgp: boolean): boolean {
  return applyRules(rules, route, ibgp) !== undefined;
}
