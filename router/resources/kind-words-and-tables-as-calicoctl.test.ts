// weft get/delete/label/patch take calicoctl's words for each kind, and get prints
// calicoctl's columns (weft's wide tables add a few of its own at the end).
import { describe, expect, it } from "vitest";
import { kindOf } from "./kinds.js";
import { parseManifests, table } from "./manifest.js";
import { calicoOnlyKind } from "./validate.js";

describe("calicoctl's words and columns", () => {
  it.each([
    ["IPPool", ["ippool", "ippools", "ipp", "ipps", "pool", "pools", "IPPool"]],
    ["Node", ["node", "nodes", "no", "nos", "Node"]],
    ["BGPConfiguration", ["bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs", "BGPConfiguration"]],
    ["BGPPeer", ["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps", "BGPPeer"]],
    ["IPReservation", ["ipreservation", "ipreservations", "reservation", "reservations", "IPReservation"]],
    ["IPAMConfiguration", ["ipamconfig", "ipamconfigs", "ipamconfiguration", "ipamconfigurations", "IPAMConfiguration"]],
    ["BGPFilter", ["bgpfilter", "bgpfilters", "BGPFilter"]],
  ])("%s is named by %j", (kind, words) => {
    for (const w of words) expect(kindOf(w), w).toBe(kind);
  });

  it("a word for a Calico kind weft does not have names that kind and what to do instead; other words name nothing", () => {
    for (const [w, kind] of [["felixconfig", "FelixConfiguration"], ["felixconfigurations", "FelixConfiguration"], ["hep", "HostEndpoint"], ["gnp", "GlobalNetworkPolicy"], ["networkpolicies", "NetworkPolicy"], ["wep", "WorkloadEndpoint"], ["profiles", "Profile"], ["kcc", "KubeControllersConfiguration"]]) {
      expect(kindOf(w), w).toBeUndefined();
      expect(calicoOnlyKind(w), w).toMatchObject({ kind, instead: expect.any(String) });
    }
    for (const w of ["n", "p", "foo", "constructor", "ippool"]) expect(calicoOnlyKind(w), w).toBeUndefined();
  });

  it("a manifest's kind or field named as something every object has is refused as any unknown one", () => {
    const doc = (kind: string, spec: string) => `apiVersion: projectcalico.org/v3\nkind: ${kind}\nmetadata: {name: x}\nspec: ${spec}\n`;
    expect(() => parseManifests(doc("constructor", "{}"), "x.yaml")).toThrow("x.yaml: document 1: constructor(x): kind: must be one of IPPool, Node, BGPConfiguration, BGPPeer, IPReservation, IPAMConfiguration, BGPFilter");
    expect(() => parseManifests(doc("toString", "{}"), "x.yaml")).toThrow("kind: must be one of IPPool");
    expect(() => parseManifests(doc("IPPool", "{cidr: 10.5.0.0/16, constructor: 1}"), "x.yaml")).toThrow('IPPool(x): spec: unknown field "constructor"');
  });

  it("bgpconfig shows LOGSEVERITY, MESHENABLED and ASNUMBER as calicoctl does, with the defaults a node uses", () => {
    const conf = (spec: Record<string, unknown>) => ({ apiVersion: "projectcalico.org/v3", kind: "BGPConfiguration", metadata: { name: "default" }, spec });
    expect(table([conf({}), conf({ logSeverityScreen: "Debug", nodeToNodeMeshEnabled: false, asNumber: 64600 })] as never, "BGPConfiguration", false)).toBe(
      "NAME      LOGSEVERITY   MESHENABLED   ASNUMBER\ndefault   Info          true          64512\ndefault   Debug         false         64600\n",
    );
    expect(table([conf({ listenPort: 1790 })] as never, "BGPConfiguration", true).split("\n")[0]).toBe("NAME      LOGSEVERITY   MESHENABLED   ASNUMBER   LISTENPORT");
  });

  it("ipamconfig shows STRICTAFFINITY and MAXBLOCKSPERHOST, with the defaults assignment uses", () => {
    const conf = (spec: Record<string, unknown>) => ({ apiVersion: "projectcalico.org/v3", kind: "IPAMConfiguration", metadata: { name: "default" }, spec });
    expect(table([conf({}), conf({ strictAffinity: true, maxBlocksPerHost: 4 })] as never, "IPAMConfiguration", false)).toBe(
      "NAME      STRICTAFFINITY   MAXBLOCKSPERHOST\ndefault   false            0\ndefault   true             4\n",
    );
  });

  it("bgpfilter -o wide counts each rule list; bgppeer -o wide names its filters", () => {
    const filter = { apiVersion: "projectcalico.org/v3", kind: "BGPFilter", metadata: { name: "tor" }, spec: { exportV4: [{ action: "Reject" }], importV4: [{ action: "Accept" }, { action: "Reject" }] } };
    expect(table([filter] as never, "BGPFilter", true)).toBe("NAME   EXPORTV4   IMPORTV4   EXPORTV6   IMPORTV6\ntor    1 rule     2 rules    0 rules    0 rules\n");
    const peer = { apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name: "tor" }, spec: { peerIP: "10.30.0.1", asNumber: 65003, filters: ["tor", "tor-v2"] } };
    expect(table([peer] as never, "BGPPeer", true).split("\n")[1]).toMatch(/\btor,tor-v2$/);
  });
});
