// Manifests and selectors are what users type: whatever the text, weft answers with a
// resource or with an error that names the file and document (exit 2), never with a
// crash. Selectors are checked against a reference evaluator over generated
// expressions, including label names such as "constructor" that a plain object has
// without being given them.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManifestError, parseManifests } from "./manifest.js";
import { parseSelector, SelectorError, type Labels } from "./selector.js";

const RUNS = 3000;

/** What parseManifests may do with any text: return resources, or refuse it naming the source. */
function manifestOutcome(text: string): "ok" | "refused" {
  try {
    parseManifests(text, "f.yaml");
    return "ok";
  } catch (err) {
    if (!(err instanceof ManifestError)) throw new Error(`not a ManifestError for ${JSON.stringify(text).slice(0, 300)}: ${String(err)}`);
    expect(err.message).toMatch(/^f\.yaml: (document \d+: \S|no resources found)/);
    return "refused";
  }
}

const POOL = { apiVersion: "projectcalico.org/v3", kind: "IPPool", metadata: { name: "p" }, spec: { cidr: "10.1.0.0/16", ipipMode: "Always", natOutgoing: true } };
const NODE = { apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name: "n", labels: { rack: "r1" } }, spec: { bgp: { ipv4Address: "10.30.0.11/24", asNumber: 64512 } } };
const PEER = { apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name: "rr" }, spec: { peerIP: "10.30.0.1", asNumber: 64512, nodeSelector: "all()", filters: ["tor"], ttlSecurity: 1 } };
const FILTER = { apiVersion: "projectcalico.org/v3", kind: "BGPFilter", metadata: { name: "tor" }, spec: { importV4: [{ action: "Reject", matchOperator: "In", cidr: "10.0.0.0/8", prefixLength: { min: 16 } }], exportV4: [{ action: "Accept", source: "RemotePeers" }] } };
const CONFIG = { apiVersion: "projectcalico.org/v3", kind: "BGPConfiguration", metadata: { name: "default" }, spec: { serviceClusterIPs: [{ cidr: "10.96.0.0/12" }], communities: [{ name: "a", value: "64512:1" }] } };

/** A document, a path into it (its own fields, and some it does not have), and a value to
 * put there: any JSON value, or one that some field would take. */
const COMMON = [["apiVersion"], ["kind"], ["metadata"], ["metadata", "name"], ["metadata", "labels"], ["metadata", "labels", "rack"], ["spec"], ["spec", "bogus"], ["__proto__"], ["spec", "__proto__"], ["spec", "constructor"], ["spec", "toString"], ["items"]];
const FIELDS: Array<[object, string[][]]> = [
  [POOL, [["spec", "cidr"], ["spec", "ipipMode"], ["spec", "vxlanMode"], ["spec", "natOutgoing"], ["spec", "blockSize"], ["spec", "nodeSelector"], ["spec", "disabled"]]],
  [NODE, [["spec", "bgp"], ["spec", "bgp", "ipv4Address"], ["spec", "bgp", "asNumber"], ["spec", "bgp", "routeReflectorClusterID"], ["spec", "ipv4VXLANTunnelAddr"]]],
  [PEER, [["spec", "peerIP"], ["spec", "asNumber"], ["spec", "nodeSelector"], ["spec", "node"], ["spec", "peerSelector"], ["spec", "keepaliveTime"], ["spec", "filters"], ["spec", "filters", "0"], ["spec", "ttlSecurity"], ["spec", "numAllowedLocalASNumbers"]]],
  [FILTER, [["spec", "importV4"], ["spec", "importV4", "0"], ["spec", "importV4", "0", "cidr"], ["spec", "importV4", "0", "matchOperator"], ["spec", "importV4", "0", "prefixLength", "min"], ["spec", "importV4", "0", "prefixLength", "max"], ["spec", "importV4", "0", "communities"], ["spec", "importV4", "0", "asPathPrefix"], ["spec", "exportV4", "0", "action"], ["spec", "exportV4", "0", "source"], ["spec", "exportV6", "0", "cidr"]]],
  [CONFIG, [["spec", "serviceClusterIPs"], ["spec", "serviceClusterIPs", "0", "cidr"], ["spec", "serviceLoadBalancerIPs"], ["spec", "communities", "0", "value"], ["spec", "prefixAdvertisements"]]],
];
const mutation = fc
  .constantFrom(...FIELDS)
  .chain(([doc, paths]) => fc.tuple(fc.constant(doc), fc.constantFrom(...paths, ...COMMON)))
  .chain(([doc, path]) => fc.tuple(fc.constant(doc), fc.constant(path), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom<unknown>("10.2.0.0/16", "Never", "CrossSubnet", 64512, 26, { rack: "r2" }, "all()", "rack == 'r1'", "10.30.0.1", "p2", true, "10s", "constructor", "toString", "hasOwnProperty", "In", "NotEqual", "0.0.0.0/0", "fd00::/8", { values: ["65003:7"] }, [65003], { min: 33 }, [{ cidr: "10.96.0.0/12" }]))));

function mutate(doc: object, path: string[], value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
  let at: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) {
    if (typeof at[k] !== "object" || at[k] === null) Object.defineProperty(at, k, { value: {}, enumerable: true, writable: true, configurable: true });
    at = at[k] as Record<string, unknown>;
  }
  Object.defineProperty(at, path[path.length - 1], { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

describe("manifests: any text gets a resource or an error naming the file", () => {
  it(`arbitrary text (${RUNS} cases)`, () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), (t) => void manifestOutcome(t)), { numRuns: RUNS });
  });

  it(`arbitrary YAML-looking text: keys, indents, anchors, aliases, tags, flow collections (${RUNS} cases)`, () => {
    const token = fc.constantFrom("kind: IPPool\n", "apiVersion: projectcalico.org/v3\n", "metadata:\n", "  name: x\n", "spec:\n", "  cidr: 10.0.0.0/8\n", "- ", "&a ", "*a ", "!!str ", "!!binary ", "? ", ": ", "{", "}", "[", "]", ",", "---\n", "...\n", "'", '"', "#", "\t", "  ", "\n", "items:\n", "kind: IPPoolList\n", "<<: *a\n", "~", "null", "0x1F", "1e400", "-.inf");
    fc.assert(fc.property(fc.array(token, { maxLength: 40 }), (ts) => void manifestOutcome(ts.join(""))), { numRuns: RUNS });
  });

  it(`arbitrary JSON documents (${RUNS} cases)`, () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => void manifestOutcome(JSON.stringify(v))), { numRuns: RUNS });
  });

  it(`valid IPPool, Node and BGPPeer documents with one field replaced by any JSON value or a plausible one (${RUNS} cases)`, () => {
    let refused = 0;
    fc.assert(
      fc.property(mutation, ([doc, path, value]) => {
        const text = JSON.stringify(mutate(doc, path, value));
        if (manifestOutcome(text) === "refused") refused++;
      }),
      { numRuns: RUNS },
    );
    console.log(`[fuzz] mutated manifests: ${refused} of ${RUNS} refused, each with a message naming f.yaml and the document; ${RUNS - refused} still valid`);
    expect(refused).toBeGreaterThan(RUNS / 4);
    expect(refused).toBeLessThan(RUNS);
  });

  it("an alias bomb is refused as YAML, not left to exhaust the process", () => {
    const bomb = ["a: &a [x,x,x,x,x,x,x,x,x]", ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(",")}]`)].join("\n");
    expect(manifestOutcome(bomb)).toBe("refused");
  });
});

// Selectors: generated expressions, rendered with varied spacing, against a reference.
type Sel =
  | { t: "all" }
  | { t: "has" | "nothas"; k: string }
  | { t: "eq" | "ne"; k: string; v: string }
  | { t: "in" | "notin"; k: string; vs: string[] }
  | { t: "not"; e: Sel }
  | { t: "and" | "or"; a: Sel; b: Sel };

const KEYS = ["rack", "zone", "route-reflector", "example.com/tier", "constructor", "toString", "__proto__", "hasOwnProperty"];
const VALUES = ["a", "b", "true", "", "r1"];
const key = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALUES);
const { sel } = fc.letrec<{ sel: Sel }>((tie) => ({
  sel: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant<Sel>({ t: "all" }),
    fc.record({ t: fc.constantFrom("has" as const, "nothas" as const), k: key }),
    fc.record({ t: fc.constantFrom("eq" as const, "ne" as const), k: key, v: value }),
    fc.record({ t: fc.constantFrom("in" as const, "notin" as const), k: key, vs: fc.array(value, { maxLength: 3 }) }),
    fc.record({ t: fc.constant("not" as const), e: tie("sel") }),
    fc.record({ t: fc.constantFrom("and" as const, "or" as const), a: tie("sel"), b: tie("sel") }),
  ),
}));
const labels: fc.Arbitrary<Labels> = fc.array(fc.tuple(key, value), { maxLength: 5 }).map((kvs) => {
  const l: Labels = {};
  for (const [k, v] of kvs) Object.defineProperty(l, k, { value: v, enumerable: true, writable: true, configurable: true });
  return l;
});

const own = (l: Labels, k: string) => Object.prototype.hasOwnProperty.call(l, k);
function reference(s: Sel, l: Labels): boolean {
  switch (s.t) {
    case "all":
      return true;
    case "has":
      return own(l, s.k);
    case "nothas":
      return !own(l, s.k);
    case "eq":
      return own(l, s.k) && l[s.k] === s.v;
    case "ne":
      return !(own(l, s.k) && l[s.k] === s.v);
    case "in":
      return own(l, s.k) && s.vs.includes(l[s.k]);
    case "notin":
      return !own(l, s.k) || !s.vs.includes(l[s.k]);
    case "not":
      return !reference(s.e, l);
    case "and":
      return reference(s.a, l) && reference(s.b, l);
    case "or":
      return reference(s.a, l) || reference(s.b, l);
  }
}
function render(s: Sel, sp: string): string {
  const q = (v: string) => `'${v}'`;
  switch (s.t) {
    case "all":
      return "all()";
    case "has":
      return `has(${s.k})`;
    case "nothas":
      return `!has(${s.k})`;
    case "eq":
      return `${s.k}${sp}==${sp}${q(s.v)}`;
    case "ne":
      return `${s.k}${sp}!=${sp}${q(s.v)}`;
    case "in":
      return `${s.k} in${sp}{${s.vs.map(q).join(`,${sp}`)}}`;
    case "notin":
      return `${s.k} not in${sp}{${s.vs.map(q).join(`,${sp}`)}}`;
    case "not":
      return `!(${render(s.e, sp)})`;
    case "and":
      return `(${render(s.a, sp)})${sp}&&${sp}(${render(s.b, sp)})`;
    case "or":
      return `(${render(s.a, sp)})${sp}||${sp}(${render(s.b, sp)})`;
  }
}

describe("selectors", () => {
  it(`any generated selector parses and agrees with the reference on any labels (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(sel, fc.constantFrom("", " ", "  "), labels, (s, sp, l) => {
        const text = render(s, sp);
        expect(parseSelector(text)(l), `${text} on ${JSON.stringify(l)}`).toBe(reference(s, l));
      }),
      { numRuns: RUNS },
    );
  });

  it("a label a plain object has without being given it (constructor, toString, __proto__) is not there", () => {
    for (const k of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(parseSelector(`has(${k})`)({}), k).toBe(false);
      expect(parseSelector(`${k} not in {'a'}`)({}), k).toBe(true);
      expect(parseSelector(`${k} in {'a'}`)({ [k]: "a" } as Labels), k).toBe(Object.prototype.hasOwnProperty.call({ [k]: "a" }, k));
    }
  });

  it(`any text: a selector or a SelectorError naming the text (${RUNS} cases)`, () => {
    const piece = fc.constantFrom("all()", "has(", "!has(", "rack", "==", "!=", " in ", " not in ", "{", "}", "'a'", '"b"', "'", ",", "&&", "||", "!", "(", ")", " ", "\t", "x/y");
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.array(piece, { maxLength: 12 }).map((p) => p.join(""))), labels, (text, l) => {
        try {
          expect(typeof parseSelector(text)(l)).toBe("boolean");
        } catch (err) {
          if (!(err instanceof SelectorError)) throw err;
          expect(err.message).toContain(`selector "${text}"`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
