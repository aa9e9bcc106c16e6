// weft label and weft patch, as Calico's route-reflector guide uses calicoctl's:
// `label node my-node route-reflector=true`, `patch node my-node -p '{"spec":...}'`,
// `patch bgpconfiguration default -p '{"spec":{"nodeToNodeMeshEnabled":false}}'`.
// Every change goes through the validator; a refused one changes nothing. Runs the built command.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { weftWithDatastore } from "./built-command.test-helper.js";

const built = weftWithDatastore("edit");
const dir = built.dir;
const weft = (...args: string[]) => built.weft(args);
const node = () => JSON.parse(weft("get", "node", "my-node", "-o", "json").stdout) as { metadata: { labels?: Record<string, string>; resourceVersion: string }; spec: { bgp: Record<string, unknown> } };

describe("weft label", () => {
  beforeAll(() => {
    writeFileSync(path.join(dir, "node.yaml"), "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: my-node\n  labels:\n    rack: r1\nspec:\n  bgp:\n    ipv4Address: 10.30.0.11/24\n---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: true\n");
    expect(weft("apply", "-f", path.join(dir, "node.yaml")).status).toBe(0);
  });

  it("sets a label and keeps the others", () => {
    const r = weft("label", "nodes", "my-node", "route-reflector=true");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("Node(my-node): label route-reflector=true set\n");
    expect(node().metadata.labels).toEqual({ rack: "r1", "route-reflector": "true" });
  });

  it("a different value needs --overwrite", () => {
    const r = weft("label", "node", "my-node", "rack=r2");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Node(my-node) already has rack=r1; --overwrite replaces it");
    expect(weft("label", "node", "my-node", "rack=r2", "--overwrite").status).toBe(0);
    expect(node().metadata.labels?.rack).toBe("r2");
  });

  it("--remove takes it away; a label that is not there is an error", () => {
    expect(weft("label", "node", "my-node", "rack", "--remove").stdout).toBe("Node(my-node): label rack removed\n");
    expect(node().metadata.labels).toEqual({ "route-reflector": "true" });
    const again = weft("label", "node", "my-node", "rack", "--remove");
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("Node(my-node) has no label rack");
  });

  it("a label named as something every object has (constructor) is a label like any other", () => {
    const set = weft("label", "node", "my-node", "constructor=x");
    expect([set.status, set.stdout]).toEqual([0, "Node(my-node): label constructor=x set\n"]);
    expect(weft("label", "node", "my-node", "constructor", "--remove").stdout).toBe("Node(my-node): label constructor removed\n");
    const again = weft("label", "node", "my-node", "constructor", "--remove");
    expect([again.status, again.stderr]).toEqual([1, expect.stringContaining("Node(my-node) has no label constructor")]);
    expect(node().metadata.labels).toEqual({ "route-reflector": "true" });
  });

  it.each([
    [["bad key=1"], 2, /label keys are a name of up to 63 letters/],
    [["zone=not valid"], 2, /label values are empty or up to 63 letters/],
    [["novalue"], 2, /expected KEY=VALUE \(or KEY --remove\), not "novalue"/],
    [["a=b", "--remove"], 2, /--remove takes a label key alone, not "a=b"/],
  ])("%j is refused and changes nothing", (args, code, message) => {
    const before = node().metadata.resourceVersion;
    const r = weft("label", "node", "my-node", ...args);
    expect(r.status).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(node().metadata.resourceVersion).toBe(before);
  });

  it("a resource that does not exist: exit 1 naming it", () => {
    const r = weft("label", "node", "nope", "a=b");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Node(nope) not found");
  });
});

describe("weft patch", () => {
  it("a merge patch (calicoctl's default type) changes only what it names", () => {
    const r = weft("patch", "node", "my-node", "-p", '{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}');
    expect(r.stdout).toBe("Node(my-node) patched\n");
    expect(node().spec.bgp).toEqual({ ipv4Address: "10.30.0.11/24", routeReflectorClusterID: "244.0.0.1" });
    expect(node().metadata.labels).toEqual({ "route-reflector": "true" });
  });

  it("turns the mesh off as the route-reflector guide does", () => {
    expect(weft("patch", "bgpconfiguration", "default", "-p", '{"spec": {"nodeToNodeMeshEnabled": false}}').status).toBe(0);
    expect(JSON.parse(weft("get", "bgpconfig", "default", "-o", "json").stdout).spec.nodeToNodeMeshEnabled).toBe(false);
  });

  it("--type json applies a JSON Patch; null in a merge patch removes a field", () => {
    expect(weft("patch", "node", "my-node", "--type", "json", "-p", '[{"op":"add","path":"/spec/bgp/asNumber","value":64600}]').status).toBe(0);
    expect(node().spec.bgp.asNumber).toBe(64600);
    expect(weft("patch", "node", "my-node", "-p", '{"spec":{"bgp":{"asNumber":null}}}').status).toBe(0);
    expect(node().spec.bgp.asNumber).toBeUndefined();
  });

  it.each([
    [['{"spec":{"bgp":{"ipv4Address":"nope"}}}'], /Node\(my-node\): spec\.bgp\.ipv4Address: must be an IPv4 address with its prefix length/],
    [['{"metadata":{"name":"other"}}'], /a patch may not change apiVersion, kind or metadata\.name/],
    [["{not json"], /--patch is not JSON/],
    [["--type", "json", "-p", '[{"op":"replace","path":"/spec/nothere/x","value":1}]'], /--patch: operation 1 \(OPERATION_PATH_UNRESOLVABLE\)/],
    [["--type", "json", "-p", '{"spec":{}}'], /--type json takes a JSON Patch: a list of operations/],
  ])("%j is refused (exit 2) and changes nothing", (args, message) => {
    const before = node().metadata.resourceVersion;
    const r = args.length === 1 ? weft("patch", "node", "my-node", "-p", args[0]) : weft("patch", "node", "my-node", ...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(node().metadata.resourceVersion).toBe(before);
  });
});
