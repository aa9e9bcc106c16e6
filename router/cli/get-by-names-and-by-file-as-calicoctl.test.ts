// `weft get` as calicoctl's: a kind whole, several resources by name, or the ones a
// manifest file names (one table per kind; YAML a List when kinds are mixed). One that
// does not exist is named and fails the command after the rest are printed.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { weftWithDatastore } from "./built-command.test-helper.js";

const { dir, weft } = weftWithDatastore("get");
const pool = (name: string, cidr: string) => `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ${name}}\nspec: {cidr: ${cidr}}\n`;
const bgpconfig = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 64600}\n";

describe("weft get", () => {
  beforeAll(() => {
    writeFileSync(path.join(dir, "all.yaml"), [pool("p1", "10.1.0.0/16"), pool("p2", "10.2.0.0/16"), bgpconfig].join("---\n"));
    expect(weft(["apply", "-f", path.join(dir, "all.yaml")]).status).toBe(0);
  });

  it("several by name: one row each, in the order asked", () => {
    const r = weft(["get", "ippool", "p2", "p1"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("NAME   CIDR          SELECTOR\np2     10.2.0.0/16   all()\np1     10.1.0.0/16   all()\n");
  });

  it("one that does not exist: the others printed, then exit 1 naming it", () => {
    const r = weft(["get", "ippool", "p1", "nope"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("NAME   CIDR          SELECTOR\np1     10.1.0.0/16   all()\n");
    expect(r.stderr).toBe("weft: resource does not exist: IPPool(nope)\n");
    expect(weft(["get", "ippool", "nope", "-o", "yaml"])).toMatchObject({ status: 1, stdout: "", stderr: "weft: resource does not exist: IPPool(nope)\n" });
  });

  it("the resources a file names: a table per kind; as YAML, a List of them that applies back", () => {
    const r = weft(["get", "-f", path.join(dir, "all.yaml")]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("NAME   CIDR          SELECTOR\np1     10.1.0.0/16   all()\np2     10.2.0.0/16   all()\n\nNAME      LOGSEVERITY   MESHENABLED   ASNUMBER\ndefault   Info          true          64600\n");
    const y = weft(["get", "-f", path.join(dir, "all.yaml"), "-o", "yaml"]);
    const doc = parse(y.stdout) as { kind: string; items: Array<{ kind: string; metadata: { name: string } }> };
    expect(doc.kind).toBe("List");
    expect(doc.items.map((i) => `${i.kind}(${i.metadata.name})`)).toEqual(["IPPool(p1)", "IPPool(p2)", "BGPConfiguration(default)"]);
    writeFileSync(path.join(dir, "back.yaml"), y.stdout);
    expect(weft(["apply", "-f", path.join(dir, "back.yaml")]).stdout).toBe("IPPool(p1) unchanged\nIPPool(p2) unchanged\nBGPConfiguration(default) unchanged\n");
  });

  it("one by name is the resource itself; a kind whole is its List, empty or not", () => {
    expect((parse(weft(["get", "ippool", "p1", "-o", "json"]).stdout) as { kind: string }).kind).toBe("IPPool");
    expect(parse(weft(["get", "bgppeer", "-o", "yaml"]).stdout)).toEqual({ apiVersion: "projectcalico.org/v3", kind: "BGPPeerList", items: [] });
    expect(weft(["get", "bgppeer"]).stdout).toBe("NAME   PEERIP   NODE   ASN\n");
  });

  it("neither a kind nor a file, or both: exit 2 saying what it takes", () => {
    expect(weft(["get"])).toMatchObject({ status: 2, stderr: "weft: get needs KIND [NAME...] or -f FILE\n" });
    expect(weft(["get", "ippool", "-f", path.join(dir, "all.yaml")])).toMatchObject({ status: 2, stderr: "weft: get takes -f FILE or KIND and names, not both\n" });
  });
});
