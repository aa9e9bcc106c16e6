import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { openDatastore, unreadableRecords } from "../store/store.js";
import { Resources } from "./client.js";
import { parseManifests, render } from "./manifest.js";
import { parseSelector } from "./selector.js";
import { nodeName } from "./validate.js";
import { nodeTunnelAddress, withTunnelFields, type BGPConfiguration, type IPPool, type NodeResource, type Resource } from "./kinds.js";
import { tempDir } from "../temp-dir.test-helper.js";

const dir = tempDir("res");
let n = 0;
const fresh = async () => new Resources(await openDatastore(`sqlite:${path.join(dir, `r${n++}.db`)}`));

const pool = (name: string, spec: Record<string, unknown>) => `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ${name}
spec:
${Object.entries(spec).map(([k, v]) => `  ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n")}
`;

// The seed's manifest, exactly as the walkthrough shows it.
const SEED_NEVER = readFileSync(new URL("./testdata/seed-ippool-never.yaml", import.meta.url), "utf8");

describe("IPPool validation messages (as Calico words them)", () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["both encapsulations", { cidr: "10.0.0.0/16", ipipMode: "Always", vxlanMode: "Always" }, "ipipMode and vxlanMode cannot both be enabled"],
    ["IPIP on IPv6", { cidr: "fd00::/112", ipipMode: "Always" }, "IPIP is not supported on IPv6 pools"],
    ["an IPv4 block size of 33", { cidr: "10.0.0.0/16", blockSize: 33 }, "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools"],
    ["an IPv4 block size of 19", { cidr: "10.0.0.0/16", blockSize: 19 }, "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools"],
    ["an IPv6 block size of 100", { cidr: "fd00::/64", blockSize: 100 }, "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools"],
    ["a pool smaller than a block", { cidr: "10.0.0.0/28", blockSize: 26 }, "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size."],
    ["host bits set", { cidr: "10.0.0.1/16" }, "IPPool CIDR must be strictly masked"],
    ["link-local overlap", { cidr: "169.254.0.0/20" }, "IPPool CIDR overlaps with IPv4 link local range 169.254.0.0/16"],
    ["loopback (pods would get 127.x)", { cidr: "127.0.0.0/24" }, "IPPool CIDR overlaps with IPv4 loopback range 127.0.0.0/8"],
    ["multicast", { cidr: "224.0.0.0/24" }, "IPPool CIDR overlaps with IPv4 multicast range 224.0.0.0/4"],
    ["the reserved 240/4", { cidr: "250.0.0.0/16" }, "IPPool CIDR overlaps with IPv4 reserved range 240.0.0.0/4"],
    ["IPv6 link local", { cidr: "fe80::/64" }, "IPPool CIDR overlaps with IPv6 link local range fe80::/10"],
    ["an unknown field", { cidr: "10.0.0.0/16", ipipmode: "Always" }, 'unknown field "ipipmode"'],
    ["a bad mode", { cidr: "10.0.0.0/16", ipipMode: "Sometimes" }, "spec.ipipMode: must be one of Never, Always, CrossSubnet"],
    ["a bad selector", { cidr: "10.0.0.0/16", nodeSelector: '"k =="' }, "spec.nodeSelector: selector"],
  ];
  for (const [what, spec, msg] of cases) {
    it(`rejects ${what}: "${msg}"`, () => {
      expect(() => parseManifests(pool("p", spec), "f.yaml")).toThrow(msg);
    });
  }

  it("for delete reads only what names a resource: a spec that no longer validates does not stop it; a bad kind or name does", () => {
    const stale = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: old-peer\nspec:\n  peerIP: 10.0.0.300\n";
    expect(() => parseManifests(stale, "f.yaml")).toThrow("BGPPeer(old-peer): spec.");
    expect(parseManifests(stale, "f.yaml", { idOnly: true }).map((r) => `${r.kind}(${r.metadata.name})`)).toEqual(["BGPPeer(old-peer)"]);
    expect(() => parseManifests("apiVersion: projectcalico.org/v3\nkind: Bogus\nmetadata: {name: x}\n", "f.yaml", { idOnly: true })).toThrow("kind: must be one of");
    expect(() => parseManifests("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: Bad_Name}\n", "f.yaml", { idOnly: true })).toThrow("metadata.name");
  });

  it("rejects overlapping pools naming both", async () => {
    const r = await fresh();
    await r.apply(parseManifests(pool("a", { cidr: "10.0.0.0/16" }), "a.yaml"));
    await expect(r.apply(parseManifests(pool("b", { cidr: "10.0.128.0/17" }), "b.yaml"))).rejects.toThrow("IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.0.0.0/16");
  });

  it("rejects a pool holding a node's own address, naming the node (pods would be given host addresses)", async () => {
    const r = await fresh();
    const node = { apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name: "worker-1" }, spec: { bgp: { ipv4Address: "10.30.0.11/24" } } } as unknown as Resource;
    await r.apply([node]);
    await expect(r.apply(parseManifests(pool("hosts", { cidr: "10.30.0.0/24" }), "h.yaml"))).rejects.toThrow("IPPool CIDR 10.30.0.0/24 contains Node(worker-1)'s address 10.30.0.11");
    await expect(r.apply(parseManifests(pool("wide", { cidr: "10.0.0.0/8" }), "w.yaml"))).rejects.toThrow("Node(worker-1)'s address 10.30.0.11");
    await r.apply(parseManifests(pool("pods", { cidr: "10.31.0.0/16" }), "p.yaml"));
    expect((await r.list("IPPool")).map((p) => p.metadata.name)).toEqual(["pods"]);
  });

  it("refuses to modify cidr or blockSize", async () => {
    const r = await fresh();
    await r.apply(parseManifests(pool("a", { cidr: "10.0.0.0/16" }), "a.yaml"));
    await expect(r.apply(parseManifests(pool("a", { cidr: "10.1.0.0/16" }), "a.yaml"))).rejects.toThrow("IPPool CIDR cannot be modified");
    await expect(r.apply(parseManifests(pool("a", { cidr: "10.0.0.0/16", blockSize: 24 }), "a.yaml"))).rejects.toThrow("IPPool BlockSize cannot be modified");
  });
});

describe("apply", () => {
  it("takes the seed's manifest unchanged and fills Calico's defaults", async () => {
    const r = await fresh();
    const [res] = await r.apply(parseManifests(SEED_NEVER, "ippool.yaml"));
    expect(res.action).toBe("created");
    const p = await r.get("IPPool", "default-ipv4-ippool");
    expect(p?.spec).toMatchObject({ cidr: "192.168.0.0/16", blockSize: 26, ipipMode: "Never", vxlanMode: "Never", natOutgoing: true, nodeSelector: "all()", disabled: false });
  });

  it("round-trips get -o yaml: the output applies again unchanged", async () => {
    const r = await fresh();
    await r.apply(parseManifests(SEED_NEVER, "ippool.yaml"));
    const yaml = render([(await r.get("IPPool", "default-ipv4-ippool"))!], "IPPool", "yaml", true);
    expect(parse(yaml).metadata.resourceVersion).toBeDefined();
    const [again] = await r.apply(parseManifests(yaml, "get.yaml"));
    expect(again.action).toBe("unchanged");
    const edited = yaml.replace("ipipMode: Never", "ipipMode: CrossSubnet");
    expect((await r.apply(parseManifests(edited, "edit.yaml")))[0].action).toBe("configured");
    // The same stale text again: its resourceVersion no longer matches.
    await expect(r.apply(parseManifests(edited.replace("CrossSubnet", "Always"), "stale.yaml"))).rejects.toThrow(/changed since resourceVersion/);
  });

  it("validates a multi-document file whole: one bad document and nothing is written", async () => {
    const r = await fresh();
    const before = await r.store.list("/");
    const text = [pool("good-a", { cidr: "10.1.0.0/16" }), pool("good-b", { cidr: "10.2.0.0/16" }), pool("bad", { cidr: "10.1.5.0/24" })].join("---\n");
    await expect(r.apply(parseManifests(text, "multi.yaml"))).rejects.toThrow("IPPool(bad) CIDR overlaps with IPPool(good-a)");
    expect(await r.store.list("/")).toEqual(before);
    const shapeBad = [pool("good-a", { cidr: "10.1.0.0/16" }), pool("bad", { cidr: "10.9.0.1/16" })].join("---\n");
    expect(() => parseManifests(shapeBad, "multi.yaml")).toThrow("multi.yaml: document 2: IPPool(bad): spec.cidr: IPPool CIDR must be strictly masked");
    expect(await r.list("IPPool")).toEqual([]);
  });

  it("a resource made from another's exported YAML gets a uid and creation time of its own; an update keeps them", async () => {
    const r = await fresh();
    await r.apply(parseManifests(SEED_NEVER, "ippool.yaml"));
    const original = (await r.get("IPPool", "default-ipv4-ippool"))!;
    // An export from a cluster made long ago.
    const copy = render([original], "IPPool", "yaml", true).replace("name: default-ipv4-ippool", "name: copy").replace("192.168.0.0/16", "10.8.0.0/16").replace(/creationTimestamp: .*/, "creationTimestamp: 2020-01-01T00:00:00Z");
    await r.apply(parseManifests(copy, "copy.yaml"), "create");
    const made = (await r.get("IPPool", "copy"))!;
    expect(made.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(made.metadata.uid).not.toBe(original.metadata.uid);
    // RFC 3339 to the second, as Calico writes it.
    expect(made.metadata.creationTimestamp).toMatch(/^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(made.metadata.creationTimestamp).not.toBe("2020-01-01T00:00:00Z");
    // Applying the original's YAML, edited, changes the pool and keeps what identifies it.
    await r.apply(parseManifests(render([original], "IPPool", "yaml", true).replace("ipipMode: Never", "ipipMode: Always"), "edit.yaml"));
    const edited = (await r.get<IPPool>("IPPool", "default-ipv4-ippool"))!;
    expect([edited.spec.ipipMode, edited.metadata.uid, edited.metadata.creationTimestamp]).toEqual(["Always", original.metadata.uid, original.metadata.creationTimestamp]);
  });

  it("a record written around weft (not JSON, not a resource) is skipped by lists and named by get; apply replaces it, delete removes it", async () => {
    const r = await fresh();
    await r.apply(parseManifests(SEED_NEVER, "ippool.yaml"));
    await r.store.txn([{ op: "create", key: "/weft/resources/ippools/bad", value: "{not json" }, { op: "create", key: "/weft/resources/ippools/odd", value: '{"kind":"IPPool","metadata":[]}' }]);
    expect((await r.list("IPPool")).map((p) => p.metadata.name)).toEqual(["default-ipv4-ippool"]);
    expect([...unreadableRecords.keys()]).toEqual(expect.arrayContaining(["/weft/resources/ippools/bad", "/weft/resources/ippools/odd"]));
    await expect(r.get("IPPool", "bad")).rejects.toThrow(/datastore record \/weft\/resources\/ippools\/bad is not a resource weft can read \(not JSON/);
    await r.apply(parseManifests(pool("odd", { cidr: "10.77.0.0/16" }), "fix.yaml"));
    expect((await r.get<IPPool>("IPPool", "odd"))?.spec.cidr).toBe("10.77.0.0/16");
    expect(unreadableRecords.has("/weft/resources/ippools/odd")).toBe(false);
    expect(await r.delete("IPPool", "bad")).toBe(true);
    await r.list("IPPool");
    expect([...unreadableRecords.keys()].filter((k) => k.startsWith("/weft/resources/ippools/"))).toEqual([]);
  });

  it("create refuses an existing resource, replace a missing one (changing nothing); delete removes it", async () => {
    const r = await fresh();
    await expect(r.apply(parseManifests(SEED_NEVER, "a.yaml"), "replace")).rejects.toThrow("IPPool(default-ipv4-ippool): metadata.name: does not exist; use create or apply to make it");
    expect(await r.list("IPPool")).toEqual([]);
    await r.apply(parseManifests(SEED_NEVER, "a.yaml"), "create");
    await expect(r.apply(parseManifests(SEED_NEVER, "a.yaml"), "create")).rejects.toThrow("already exists; use apply");
    expect((await r.apply(parseManifests(SEED_NEVER.replace("ipipMode: Never", "ipipMode: Always"), "a.yaml"), "replace")).map((x) => x.action)).toEqual(["configured"]);
    expect((await r.get<IPPool>("IPPool", "default-ipv4-ippool"))?.spec.ipipMode).toBe("Always");
    expect(await r.delete("IPPool", "default-ipv4-ippool")).toBe(true);
    expect(await r.delete("IPPool", "default-ipv4-ippool")).toBe(false);
  });

  it("takes BGPConfiguration, BGPPeer and Node in Calico's shape", async () => {
    const r = await fresh();
    const text = `apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64512, nodeToNodeMeshEnabled: false, listenPort: 179, nodeMeshMaxRestartTime: 120s}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr}
spec: {peerSelector: "route-reflector == 'true'", nodeSelector: "!has(route-reflector)"}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: worker-1, labels: {route-reflector: "true"}}
spec: {bgp: {ipv4Address: 10.30.0.11/24, routeReflectorClusterID: 10.30.0.1}}
`;
    expect((await r.apply(parseManifests(text, "bgp.yaml"))).map((x) => x.action)).toEqual(["created", "created", "created"]);
    expect(() => parseManifests(text.replace("listenPort: 179", "listenPort: 70000"), "x")).toThrow(/spec\.listenPort/);
  });

  it("a Node's addresses and MAC parse, or the Node is refused", () => {
    const nodeDoc = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: ${spec}\n`;
    expect(parseManifests(nodeDoc("{bgp: {ipv4Address: 10.30.0.11/24, routeReflectorClusterID: 10.30.0.1}, ipv4VXLANTunnelAddr: 192.168.1.1, vxlanTunnelMACAddr: '66:93:7f:54:d5:53'}"), "x")).toHaveLength(1);
    const bad: Array<[string, RegExp]> = [
      ["{bgp: {ipv4Address: 10.30.0.300/24}}", /spec\.bgp\.ipv4Address: must be an IPv4 address with its prefix length/],
      ["{bgp: {ipv4Address: 10.30.0.11/24, routeReflectorClusterID: x}}", /spec\.bgp\.routeReflectorClusterID: must be an IPv4 address/],
      ["{ipv4VXLANTunnelAddr: foo}", /spec\.ipv4VXLANTunnelAddr: must be an IPv4 address/],
      ["{vxlanTunnelMACAddr: zz}", /spec\.vxlanTunnelMACAddr: must be a MAC address/],
    ];
    for (const [spec, msg] of bad) expect(() => parseManifests(nodeDoc(spec), "x"), spec).toThrow(msg);
    // A bare address, as Calico takes it (a /32; weft apply notes the CrossSubnet trap).
    expect(parseManifests(nodeDoc("{bgp: {ipv4Address: 10.30.0.11}}"), "x")).toHaveLength(1);
    // A misspelt field is named where it is.
    expect(() => parseManifests(nodeDoc("{bgp: {ipv4Adress: 10.30.0.11/24}}"), "x")).toThrow('Node(n1): spec.bgp: unknown field "ipv4Adress"');
  });

  it("labels are Kubernetes labels (selectors match them): a key or value no selector could name is refused where it is", () => {
    const withLabels = (labels: string) => `apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1, labels: ${labels}}\nspec: {}\n`;
    expect(parseManifests(withLabels("{route-reflector: 'true', topology.kubernetes.io/zone: eu-1a, empty: ''}"), "x")).toHaveLength(1);
    expect(() => parseManifests(withLabels("{'rack 1': a}"), "x")).toThrow(/Node\(n1\): metadata\.labels\.rack 1: label keys are a name of up to 63 letters/);
    expect(() => parseManifests(withLabels("{rack: '-a'}"), "x")).toThrow(/metadata\.labels\.rack: label values are empty or up to 63 letters/);
    expect(() => parseManifests(withLabels(`{rack: ${"a".repeat(64)}}`), "x")).toThrow(/label values/);
  });

  it("a Calico kind weft does not take is named as such, with what to do, not as a typo", () => {
    const doc = (kind: string) => `apiVersion: projectcalico.org/v3\nkind: ${kind}\nmetadata: {name: default}\nspec: {}\n`;
    expect(() => parseManifests(doc("FelixConfiguration"), "x")).toThrow(/FelixConfiguration\(default\): kind: FelixConfiguration is Calico's, and weft does not take it \(weft's data-path settings are weft node run's options.*\); remove it from the file \(weft takes IPPool, Node, BGPConfiguration, BGPPeer, IPReservation, IPAMConfiguration, BGPFilter\)/);
    expect(() => parseManifests(doc("GlobalNetworkPolicy"), "x")).toThrow(/weft does no network policy/);
    expect(() => parseManifests(doc("IPPoll"), "x")).toThrow(/IPPoll\(default\): kind: must be one of IPPool, Node, BGPConfiguration, BGPPeer, IPReservation, IPAMConfiguration/);
    // A kind with spaces around it is named without them (the fuzzer found "document 1:  !(default)").
    expect(() => parseManifests(doc("' !'"), "x")).toThrow(/^x: document 1: !\(default\): kind: must be one of/);
  });

  it("BGPConfiguration communities and prefixAdvertisements as Calico takes them; a bad value, a name twice, a community that resolves to nothing and a bad CIDR each named", () => {
    const doc = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: ${spec}\n`;
    const ok = parseManifests(doc("{communities: [{name: rack, value: '63400:300:100'}], prefixAdvertisements: [{cidr: 192.168.0.0/16, communities: [rack, '63400:120']}]}"), "x")[0] as BGPConfiguration;
    expect(ok.spec.prefixAdvertisements).toEqual([{ cidr: "192.168.0.0/16", communities: ["rack", "63400:120"] }]);
    const cases: Array<[string, string]> = [
      ["{communities: [{name: a, value: '70000:1'}]}", 'spec.communities[0].value: "70000:1" is not a value such as 64512:100 (each part 0-65535) or 64512:100:200 (each part 0-4294967295)'],
      ["{communities: [{name: a, value: '1:1'}, {name: a, value: '1:2'}]}", 'spec.communities[1].name: "a" is defined twice'],
      ["{prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: [nope]}]}", 'spec.prefixAdvertisements[0].communities[0]: "nope" is neither a name in spec.communities nor a value such as 64512:100'],
      ["{prefixAdvertisements: [{cidr: 10.0.0.1/8, communities: ['1:1']}]}", 'spec.prefixAdvertisements[0].cidr: "10.0.0.1/8" has bits set past its prefix length'],
      ["{prefixAdvertisements: [{cidr: 10.0.0/8, communities: ['1:1']}]}", 'spec.prefixAdvertisements[0].cidr: "10.0.0/8" is not an IP network such as 192.168.0.0/16'],
      ["{prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: []}]}", "spec.prefixAdvertisements[0].communities: must list at least one community"],
    ];
    for (const [spec, message] of cases) expect(() => parseManifests(doc(spec), "x"), spec).toThrow(`BGPConfiguration(default): ${message}`);
  });

  it("a node's own BGPConfiguration (node.<name>) sets only what it may override, and may name the default's communities", () => {
    const doc = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.worker-1}\nspec: ${spec}\n`;
    expect(parseManifests(doc("{listenPort: 1790, logSeverityScreen: Debug, prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: [rack-a, '64512:7']}]}"), "x")).toHaveLength(1);
    expect(() => parseManifests(doc("{asNumber: 65000}"), "x")).toThrow("BGPConfiguration(node.worker-1): spec.asNumber: a node's own BGPConfiguration (node.<name>) may set only listenPort, logSeverityScreen, prefixAdvertisements; set asNumber in BGPConfiguration(default), or for one node in its Node (spec.bgp.asNumber)");
    expect(() => parseManifests(doc("{nodeToNodeMeshEnabled: false}"), "x")).toThrow("spec.nodeToNodeMeshEnabled: a node's own BGPConfiguration (node.<name>) may set only listenPort, logSeverityScreen, prefixAdvertisements; set nodeToNodeMeshEnabled in BGPConfiguration(default)");
    expect(() => parseManifests(doc("{prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: ['70000:1']}]}"), "x")).toThrow('spec.prefixAdvertisements[0].communities[0]: "70000:1" is neither');
  });

  it("BGPFilter: Calico's rules apply; conditions that cannot combine, CIDRs of the other family or with host bits, and the fields weft does not do are refused by where they are", () => {
    const doc = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: tor}\nspec: ${spec}\n`;
    const ok = `{exportV4: [{action: Accept, matchOperator: In, cidr: 77.0.0.0/16, source: RemotePeers, operations: [{addCommunity: {value: "65000:1"}}, {prependASPath: {prefix: [65000, 65000]}}]}, {action: Reject, peerType: eBGP}], importV4: [{action: Accept, matchOperator: In, cidr: 55.0.0.0/16, prefixLength: {min: 30}}, {action: Reject, matchOperator: NotIn, cidr: 44.0.0.0/16}, {action: Reject, communities: {values: ["65003:7"]}, asPathPrefix: [65003]}], exportV6: [{action: Reject, matchOperator: Equal, cidr: "5000::/64"}]}`;
    expect(parseManifests(doc(ok), "x")).toHaveLength(1);
    const cases: Array<[string, string]> = [
      ["{importV4: [{action: Reject, cidr: 10.0.0.0/8}]}", "spec.importV4[0]: cidr and matchOperator go together: give both or neither"],
      ["{importV4: [{action: Reject, matchOperator: In}]}", "spec.importV4[0]: cidr and matchOperator go together"],
      ["{importV4: [{action: Reject, matchOperator: In, cidr: 'fd00::/8'}]}", 'spec.importV4[0].cidr: "fd00::/8" is not an IPv4 network such as 10.0.0.0/8 (importV4 rules match IPv4 routes)'],
      ["{exportV6: [{action: Reject, matchOperator: In, cidr: 10.0.0.0/8}]}", 'spec.exportV6[0].cidr: "10.0.0.0/8" is not an IPv6 network'],
      ["{exportV4: [{action: Reject, matchOperator: In, cidr: 10.0.0.1/8}]}", 'spec.exportV4[0].cidr: "10.0.0.1/8" has bits set past its prefix length'],
      ["{exportV4: [{action: Reject, matchOperator: Equal, cidr: 10.0.0.0/8, prefixLength: {min: 16}}]}", "spec.exportV4[0].prefixLength: goes with a cidr and matchOperator In or NotIn"],
      ["{exportV4: [{action: Reject, matchOperator: In, cidr: 10.0.0.0/8, prefixLength: {min: 24, max: 16}}]}", "spec.exportV4[0].prefixLength: min 24 is above max 16"],
      ["{exportV4: [{action: Reject, matchOperator: In, cidr: 10.0.0.0/16, prefixLength: {max: 8}}]}", "spec.exportV4[0].prefixLength.max: 8 is shorter than the CIDR's own /16: no route In it is that short"],
      ["{exportV4: [{action: Reject, matchOperator: In, cidr: 10.0.0.0/8, prefixLength: {max: 33}}]}", "spec.exportV4[0].prefixLength.max"],
      ["{exportV4: [{action: Drop}]}", "spec.exportV4[0].action: must be one of Accept, Reject"],
      ["{exportV4: [{action: Reject, communities: {values: ['70000:1']}}]}", 'spec.exportV4[0].communities.values[0]: "70000:1" is not a value such as 64512:100'],
      ["{exportV4: [{action: Reject, interface: '*.calico'}]}", "spec.exportV4[0]: interface is Calico's, and weft does not support it (weft announces BGP routes only (its blocks, and the routes it passes on or reflects), and none has an interface to match): remove it"],
      ["{exportV4: [{action: Accept, operations: [{setPriority: {value: 512}}]}]}", "spec.exportV4[0].operations[0]: setPriority is Calico's, and weft does not support it (weft's routes carry no priority"],
      ["{exportV4: [{action: Reject, operations: [{addCommunity: {value: '65000:1'}}]}]}", "spec.exportV4[0].operations: go with action Accept only (a rejected route is not changed)"],
      ["{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:1'}, prependASPath: {prefix: [65000]}}]}]}", "spec.exportV4[0].operations[0]: must set exactly one of addCommunity, prependASPath"],
      ["{exportV4: [{action: Accept, operations: [{}]}]}", "spec.exportV4[0].operations[0]: must set exactly one of addCommunity, prependASPath"],
      ["{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:x'}}]}]}", 'spec.exportV4[0].operations[0].addCommunity.value: "65000:x" is not a value such as 64512:100'],
      ["{exportV4: [{action: Accept, operations: [{prependASPath: {prefix: []}}]}]}", "spec.exportV4[0].operations[0].prependASPath.prefix: must list at least one AS number"],
    ];
    for (const [spec, message] of cases) expect(() => parseManifests(doc(spec), "x"), spec).toThrow(`BGPFilter(tor): ${message}`);
    const peer = (filters: string) => `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.30.0.1, asNumber: 65003, filters: ${filters}}\n`;
    expect((parseManifests(peer("[tor, tor-extra]"), "x")[0].spec as { filters: string[] }).filters).toEqual(["tor", "tor-extra"]);
    expect(() => parseManifests(peer("[Tor_1]"), "x")).toThrow("BGPPeer(tor): spec.filters[0]: must be lowercase letters");
  });

  it("BGPPeer numAllowedLocalASNumbers is a count, 0 to 255", () => {
    const peer = (n: string) => `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.30.0.1, asNumber: 65003, numAllowedLocalASNumbers: ${n}}\n`;
    expect((parseManifests(peer("2"), "x")[0].spec as { numAllowedLocalASNumbers: number }).numAllowedLocalASNumbers).toBe(2);
    expect(() => parseManifests(peer("-1"), "x")).toThrow("BGPPeer(tor): spec.numAllowedLocalASNumbers:");
  });

  it("BGPPeer reachableBy is the IPv4 gateway toward peerIP, with a peerIP that is not itself", () => {
    const peer = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: ${spec}\n`;
    expect(parseManifests(peer("{peerIP: 10.30.9.1, asNumber: 65001, reachableBy: 10.30.0.1}"), "x")).toHaveLength(1);
    expect(() => parseManifests(peer("{peerSelector: all(), reachableBy: 10.30.0.1}"), "x")).toThrow("BGPPeer(tor): spec.reachableBy: is the gateway toward peerIP: set peerIP");
    expect(() => parseManifests(peer("{peerIP: '10.30.9.1:1179', asNumber: 65001, reachableBy: 10.30.9.1}"), "x")).toThrow("BGPPeer(tor): spec.reachableBy: is the gateway toward peerIP, not peerIP itself");
    expect(() => parseManifests(peer("{peerIP: 10.30.9.1, asNumber: 65001, reachableBy: 'fe80::1'}"), "x")).toThrow("BGPPeer(tor): spec.reachableBy: must be an IPv4 address such as 10.30.0.1");
  });

  it("BGPPeer nextHopMode is Auto, Self or Keep, and not beside keepOriginalNextHop (as Calico refuses both)", () => {
    const peer = (more: string) => `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.30.0.1, asNumber: 65003, ${more}}\n`;
    for (const mode of ["Auto", "Self", "Keep"]) expect(parseManifests(peer(`nextHopMode: ${mode}`), "x")).toHaveLength(1);
    expect(parseManifests(peer("keepOriginalNextHop: true"), "x")).toHaveLength(1);
    expect(() => parseManifests(peer("nextHopMode: Never"), "x")).toThrow("BGPPeer(tor): spec.nextHopMode:");
    expect(() => parseManifests(peer("keepOriginalNextHop: true, nextHopMode: Self"), "x")).toThrow("BGPPeer(tor): spec: keepOriginalNextHop and nextHopMode cannot both be set (keepOriginalNextHop: true is nextHopMode: Keep)");
  });

  it("BGPPeer ttlSecurity (GTSM) is a hop count, 0 (off) to 255", () => {
    const peer = (ttl: string) => `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.30.0.1, asNumber: 65003, ttlSecurity: ${ttl}}\n`;
    expect((parseManifests(peer("1"), "x")[0].spec as { ttlSecurity: number }).ttlSecurity).toBe(1);
    expect(parseManifests(peer("0"), "x")).toHaveLength(1);
    expect(() => parseManifests(peer("256"), "x")).toThrow("BGPPeer(tor): spec.ttlSecurity:");
    expect(() => parseManifests(peer("1.5"), "x")).toThrow("BGPPeer(tor): spec.ttlSecurity:");
  });

  it("a Calico field weft does not do is refused as such, not as a typo", () => {
    const doc = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 64512, ignoredInterfaces: [eth9]}\n";
    expect(() => parseManifests(doc, "x")).toThrow("BGPConfiguration(default): spec: ignoredInterfaces is Calico's, and weft does not support it (weft's address detection takes --ip or --interface): remove it");
  });

  it("BGPConfiguration's service ranges (cluster, external, load balancer IPs) are networks, masked; a node's own BGPConfiguration cannot set them", () => {
    const doc = (name: string, spec: string) => `apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
    expect(parseManifests(doc("default", "{serviceClusterIPs: [{cidr: 10.96.0.0/12}, {cidr: 'fd00:96::/112'}], serviceExternalIPs: [{cidr: 203.0.113.0/24}], serviceLoadBalancerIPs: [{cidr: 198.51.100.0/24}]}"), "x")).toHaveLength(1);
    expect(() => parseManifests(doc("default", "{serviceClusterIPs: [{cidr: 10.96.0.1/12}]}"), "x")).toThrow('BGPConfiguration(default): spec.serviceClusterIPs[0].cidr: "10.96.0.1/12" has bits set past its prefix length');
    expect(() => parseManifests(doc("default", "{serviceLoadBalancerIPs: [{cidr: lb}]}"), "x")).toThrow('spec.serviceLoadBalancerIPs[0].cidr: "lb" is not an IP network such as 10.96.0.0/12');
    expect(() => parseManifests(doc("node.worker-1", "{serviceClusterIPs: [{cidr: 10.96.0.0/12}]}"), "x")).toThrow("spec.serviceClusterIPs: a node's own BGPConfiguration (node.<name>) may set only listenPort, logSeverityScreen, prefixAdvertisements; set serviceClusterIPs in BGPConfiguration(default)");
  });

  it("a Node as calicoctl prints it (Calico's IPIP tunnel address, orchRefs, status) applies; status is not stored", () => {
    const doc = `apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: worker-1
  annotations: {projectcalico.org/kube-labels: '{}'}
spec:
  addresses: [{address: 10.30.0.11/24, type: CalicoNodeIP}]
  bgp: {ipv4Address: 10.30.0.11/24, ipv4IPIPTunnelAddr: 192.168.219.64}
  orchRefs: [{nodeName: worker-1, orchestrator: k8s}]
status:
  podCIDRs: [10.244.1.0/24]
`;
    const [node] = parseManifests(doc, "x") as Array<Resource & { status?: unknown }>;
    expect(node.spec).toMatchObject({ bgp: { ipv4IPIPTunnelAddr: "192.168.219.64" }, orchRefs: [{ nodeName: "worker-1", orchestrator: "k8s" }] });
    expect(node.status).toBeUndefined();
  });

  it("a BGPPeer names one peer one way and a peer address that is one", () => {
    const peer = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: ${spec}\n`;
    expect(parseManifests(peer("{peerIP: 10.30.0.1, asNumber: 65001, node: worker-1}"), "x")).toHaveLength(1);
    expect(parseManifests(peer("{peerIP: '10.30.0.1:1790', asNumber: 65001}"), "x")).toHaveLength(1);
    const bad: Array<[string, RegExp]> = [
      ["{peerIP: 10.30.0.300, asNumber: 1}", /spec\.peerIP: "10\.30\.0\.300" is not an IPv4 address/],
      ["{peerIP: '10.30.0.1:70000', asNumber: 1}", /spec\.peerIP: "10\.30\.0\.1:70000" is not an IPv4 address/],
      ["{peerIP: 10.30.0.1}", /spec\.asNumber: must be set when peerSelector is not set/],
      ["{asNumber: 1}", /spec\.peerIP: must be set when peerSelector is not set/],
      ["{peerIP: 10.30.0.1, asNumber: 1, peerSelector: all()}", /spec: cannot set both peerIP and peerSelector/],
      ["{peerSelector: all(), node: a, nodeSelector: all()}", /spec: cannot set both node and nodeSelector/],
    ];
    for (const [spec, msg] of bad) expect(() => parseManifests(peer(spec), "x"), spec).toThrow(msg);
  });
});

describe("selectors", () => {
  const labels = { zone: "a", "route-reflector": "true", rack: "r1" };
  const cases: Array<[string, boolean]> = [
    ["all()", true],
    ["zone == 'a'", true],
    ["zone != 'a'", false],
    ["has(rack)", true],
    ["!has(rack)", false],
    ["zone in {'a','b'}", true],
    ["zone not in {'a'}", false],
    ["zone == 'b' || (has(rack) && route-reflector == 'true')", true],
    ["!(zone == 'a')", false],
  ];
  for (const [s, want] of cases) it(`${s} -> ${want}`, () => expect(parseSelector(s)(labels)).toBe(want));
});

describe("node names and resources built in code", () => {
  it("take the hostname in lowercase by default and refuse a name a Node cannot have", async () => {
    const { hostname } = await import("node:os");
    expect(nodeName()).toBe(hostname().trim().toLowerCase());
    expect(nodeName("worker-1")).toBe("worker-1");
    for (const bad of ["Bad Name", "UPPER", "-x", "a_b", ""]) expect(() => nodeName(bad), bad).toThrow(/metadata.name/);
  });

  it("go through the kind's validator on every write, not only from manifests (a node once registered 'Bad Name')", async () => {
    const res = await fresh();
    const node = (name: string) => ({ apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name }, spec: {} }) as unknown as Resource;
    await expect(res.apply([node("Bad Name")])).rejects.toThrow(/Node\(Bad Name\): metadata.name: must be lowercase/);
    expect(await res.list("Node")).toEqual([]);
    await res.apply([node("good-1")]);
    expect((await res.list("Node")).map((r) => r.metadata.name)).toEqual(["good-1"]);
  });
});

describe("a Node's tunnel fields, where Calico's node puts them", () => {
  const spec = { bgp: { ipv4Address: "10.30.0.11/24", asNumber: 64512 }, orchRefs: [{ orchestrator: "k8s" }] };
  const mac = "66:93:7f:54:d5:53";
  it("IPIP pools: bgp.ipv4IPIPTunnelAddr, no VXLAN fields", () => {
    expect(withTunnelFields({ ...spec, ipv4VXLANTunnelAddr: "192.168.1.1", vxlanTunnelMACAddr: mac }, "192.168.1.1", mac, { ipip: true, vxlan: false })).toEqual({ ...spec, bgp: { ...spec.bgp, ipv4IPIPTunnelAddr: "192.168.1.1" } });
  });
  it("VXLAN pools: ipv4VXLANTunnelAddr and the VTEP MAC; an IPIP field left from before goes", () => {
    expect(withTunnelFields({ ...spec, bgp: { ...spec.bgp, ipv4IPIPTunnelAddr: "192.168.1.1" } }, "192.168.1.1", mac, { ipip: false, vxlan: true })).toEqual({ ...spec, ipv4VXLANTunnelAddr: "192.168.1.1", vxlanTunnelMACAddr: mac });
  });
  it("both: the one address weft0 holds in both; neither (direct): in the VXLAN fields, as weft0 still holds it", () => {
    const both = withTunnelFields(spec, "192.168.1.1", mac, { ipip: true, vxlan: true });
    expect([both.bgp?.ipv4IPIPTunnelAddr, both.ipv4VXLANTunnelAddr, both.vxlanTunnelMACAddr]).toEqual(["192.168.1.1", "192.168.1.1", mac]);
    expect(withTunnelFields(spec, "192.168.1.1", mac, { ipip: false, vxlan: false })).toEqual({ ...spec, ipv4VXLANTunnelAddr: "192.168.1.1", vxlanTunnelMACAddr: mac });
  });
  it("no tunnel address (no pool gives one): no address field; either field reads back", () => {
    expect(withTunnelFields(spec, undefined, mac, { ipip: true, vxlan: false })).toEqual(spec);
    const node = (s: object) => ({ apiVersion: "projectcalico.org/v3", kind: "Node", metadata: { name: "n" }, spec: s }) as NodeResource;
    expect(nodeTunnelAddress(node({ bgp: { ipv4IPIPTunnelAddr: "192.168.1.1" } }))).toBe("192.168.1.1");
    expect(nodeTunnelAddress(node({ ipv4VXLANTunnelAddr: "192.168.1.2" }))).toBe("192.168.1.2");
    expect(nodeTunnelAddress(node({}))).toBeUndefined();
  });
});
