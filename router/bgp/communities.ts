// BGP communities as Calico's BGPConfiguration gives them: a value is "aa:nn" (RFC 1997,
// each part 0-65535) or "aa:nn:mm" (RFC 8092 large, each part 0-4294967295), named in
// spec.communities or written out; spec.prefixAdvertisements adds them to every route a
// node exports inside a CIDR, as Calico's BIRD filter does with `net ~ cidr`.
import { parseCIDR, within } from "../dataplane/addr.js";
import type { BGPConfigurationSpec } from "../resources/kinds.js";
import type { Attributes } from "./wire.js";

export type Community = { standard: number } | { large: [number, number, number] };

const STANDARD = /^(\d{1,5}):(\d{1,5})$/;
const LARGE = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/;

/** A community value, or undefined if it is not one. */
export function parseCommunity(text: string): Community | undefined {
  const s = STANDARD.exec(text);
  if (s) {
    const [a, n] = [Number(s[1]), Number(s[2])];
    return a <= 0xffff && n <= 0xffff ? { standard: ((a << 16) | n) >>> 0 } : undefined;
  }
  const l = LARGE.exec(text);
  if (l) {
    const parts = [Number(l[1]), Number(l[2]), Number(l[3])] as [number, number, number];
    return parts.every((x) => x <= 0xffffffff) ? { large: parts } : undefined;
  }
  return undefined;
}

/** As Calico writes them: 64512:100, 64512:100:200. */
export function communityTexts(a: Pick<Attributes, "communities" | "largeCommunities">): string[] {
  return [...(a.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`), ...(a.largeCommunities ?? []).map((l) => l.join(":"))];
}

/** A community named in spec.communities, or written out; undefined if it is neither. */
export function resolveCommunity(word: string, spec: Pick<BGPConfigurationSpec, "communities">): Community | undefined {
  const named = spec.communities?.find((c) => c.name === word);
  return parseCommunity(named ? named.value : word);
}

/** Community words in prefixAdvertisements that are neither a value nor a name in communities (only a node's own BGPConfiguration can carry one past the validator). */
export function unresolvedCommunities(spec: BGPConfigurationSpec | undefined): string[] {
  const words = (spec?.prefixAdvertisements ?? []).flatMap((a) => a.communities);
  return [...new Set(words.filter((w) => !resolveCommunity(w, spec!)))];
}

/** attrs with the communities of add put in, each once (BIRD's bgp_community.add). */
export function addCommunities<T extends Pick<Attributes, "communities" | "largeCommunities">>(attrs: T, add: Pick<Attributes, "communities" | "largeCommunities">): T {
  let out = attrs;
  for (const c of add.communities ?? []) if (!(out.communities ?? []).includes(c)) out = { ...out, communities: [...(out.communities ?? []), c] };
  for (const l of add.largeCommunities ?? []) if (!(out.largeCommunities ?? []).some((x) => x.every((v, i) => v === l[i]))) out = { ...out, largeCommunities: [...(out.largeCommunities ?? []), l] };
  return out;
}

/** The communities routes carry by prefixAdvertisements: cidr -> what to add (a route inside several gets them all). */
export type CommunitiesOf = (cidr: string) => Pick<Attributes, "communities" | "largeCommunities">;

export function advertisedCommunities(spec: BGPConfigurationSpec | undefined): CommunitiesOf {
  const rules = (spec?.prefixAdvertisements ?? []).flatMap((a) => {
    const prefix = parseCIDR(a.cidr, false);
    return prefix ? [{ prefix, communities: a.communities.map((w) => resolveCommunity(w, spec!)).filter((c): c is Community => c !== undefined) }] : [];
  });
  return (cidr) => {
    const p = parseCIDR(cidr, false);
    if (!p || rules.length === 0) return {};
    const standard = new Set<number>();
    const large = new Map<string, [number, number, number]>();
    for (const r of rules) {
      // Inside: at least as long, and its address in the CIDR (BIRD's net ~ cidr).
      if (!within(p, r.prefix)) continue;
      for (const c of r.communities) {
        if ("standard" in c) standard.add(c.standard);
        else large.set(c.large.join(":"), c.large);
      }
    }
    return { ...(standard.size ? { communities: [...standard] } : {}), ...(large.size ? { largeCommunities: [...large.values()] } : {}) };
  };
}
