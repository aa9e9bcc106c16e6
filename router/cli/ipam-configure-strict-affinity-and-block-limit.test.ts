// `weft ipam configure`: Calico's strictAffinity and maxBlocksPerHost for the whole
// cluster (its IPAMConfiguration), printed by `weft ipam show --show-configuration`, obeyed by every later
// assignment, and named in the error when they are what left a pod without an address.
// `weft replace`: changes what exists, refuses what does not. Runs the built command.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { weftWithDatastore } from "./built-command.test-helper.js";

const { dir, weft } = weftWithDatastore("ipamcfg");
const assign = (node: string, handle: string) => weft(["ipam", "assign", "--node", node, "--handle", handle]);
const pool = (cidr: string) => `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"${cidr}","blockSize":30}}`;

describe("weft ipam configure", () => {
  it("shows Calico's defaults before anything is set", () => {
    writeFileSync(path.join(dir, "pool.json"), pool("10.60.0.0/29")); // two blocks of 4
    expect(weft(["apply", "-f", path.join(dir, "pool.json")]).status).toBe(0);
    const r = weft(["ipam", "show", "--show-configuration"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("PROPERTY         | VALUE\nStrictAffinity   | false\nMaxBlocksPerHost | 0    \n");
  });

  it("strict affinity: a node with full blocks and the pool's blocks all claimed gets no borrowed address, and the error says why; borrowed addresses stay, and the command says so", () => {
    for (let i = 0; i < 4; i++) expect(assign("w1", `a${i}`).status).toBe(0);
    expect(assign("w2", "b0").status).toBe(0);
    // Borrowed before strict affinity: w1 takes one of w2's addresses.
    expect(assign("w1", "a4").status).toBe(0);
    const set = weft(["ipam", "configure", "--strictaffinity", "true"]);
    expect(set.status).toBe(0);
    expect(set.stdout).toBe("Successfully set StrictAffinity to: true\n");
    expect(set.stderr).toBe("weft: note: 1 address is already borrowed from other nodes' blocks and stays until released (weft ipam show --show-borrowed lists them)\n");
    expect(weft(["ipam", "show", "--show-configuration"]).stdout).toContain("StrictAffinity   | true ");
    const refused = assign("w1", "a5");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("No IPs available in pools: [10.60.0.0/29] (strictAffinity keeps it from borrowing the free addresses of other nodes' blocks: weft ipam configure changes that)");
    // w2's own block still serves w2.
    expect(assign("w2", "b1").status).toBe(0);
    expect(weft(["ipam", "configure", "--strictaffinity=false"]).stdout).toBe("Successfully set StrictAffinity to: false\n");
    expect(assign("w1", "a5").status).toBe(0);
  });

  it("a block limit below what nodes hold: they keep their blocks, the command names them, and they claim no more", () => {
    const set = weft(["ipam", "configure", "--max-blocks-per-host", "0"]);
    expect(set.stdout).toBe("Successfully set MaxBlocksPerHost to: 0\n");
    writeFileSync(path.join(dir, "pool2.json"), pool("10.61.0.0/28").replace('"name":"p"', '"name":"q"')); // four blocks of 4
    expect(weft(["apply", "-f", path.join(dir, "pool2.json")]).status).toBe(0);
    for (let i = 0; i < 5; i++) expect(weft(["ipam", "assign", "--node", "w3", "--handle", `c${i}`, "--pool", "q"]).status).toBe(0); // two blocks
    const limit = weft(["ipam", "configure", "--max-blocks-per-host", "1", "--strictaffinity", "true"]);
    expect(limit.stdout).toBe("Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 1\n");
    expect(limit.stderr).toBe("weft: note: 2 addresses are already borrowed from other nodes' blocks and stay until released (weft ipam show --show-borrowed lists them)\nweft: note: this node holds more blocks than that and keeps them, claiming no more: w3 (2)\n");
    for (let i = 5; i < 8; i++) expect(weft(["ipam", "assign", "--node", "w3", "--handle", `c${i}`, "--pool", "q"]).status).toBe(0);
    const full = weft(["ipam", "assign", "--node", "w3", "--handle", "c8", "--pool", "q"]);
    expect(full.status).toBe(1);
    expect(full.stderr).toContain("No IPs available in pools: [10.61.0.0/28] (node w3 has 2 blocks, as many as maxBlocksPerHost (1) allows: weft ipam configure changes that)");
    expect(weft(["ipam", "show", "--show-configuration"]).stdout).toBe("PROPERTY         | VALUE\nStrictAffinity   | true \nMaxBlocksPerHost | 1    \n");
  });

  it("the settings are the cluster's IPAMConfiguration: weft get prints it, its YAML applies back", () => {
    expect(weft(["get", "ipamconfig"]).stdout).toBe("NAME      STRICTAFFINITY   MAXBLOCKSPERHOST\ndefault   true             1\n");
    const yaml = weft(["get", "ipamconfig", "default", "-o", "yaml"]).stdout;
    expect(yaml).toMatch(/^apiVersion: projectcalico.org\/v3\nkind: IPAMConfiguration\nmetadata:\n  name: default\n[\s\S]*spec:\n  strictAffinity: true\n  maxBlocksPerHost: 1\n$/);
    writeFileSync(path.join(dir, "ipamconfig.yaml"), yaml.replace("maxBlocksPerHost: 1", "maxBlocksPerHost: 0"));
    expect(weft(["apply", "-f", path.join(dir, "ipamconfig.yaml")]).stdout).toBe("IPAMConfiguration(default) configured\n");
    expect(weft(["ipam", "show", "--show-configuration"]).stdout).toContain("MaxBlocksPerHost | 0");
  });
});

describe("weft replace", () => {
  it("changes a resource that exists; one that does not fails the whole file and changes nothing", () => {
    const q = pool("10.61.0.0/28").replace('"name":"p"', '"name":"q"').replace('"blockSize":30', '"blockSize":30,"natOutgoing":true');
    writeFileSync(path.join(dir, "replace.json"), q);
    const ok = weft(["replace", "-f", path.join(dir, "replace.json")]);
    expect(ok.stdout).toBe("IPPool(q) configured\n");
    writeFileSync(path.join(dir, "replace2.json"), `${q.replace('"natOutgoing":true', '"natOutgoing":false')}\n---\n${pool("10.62.0.0/16").replace('"name":"p"', '"name":"new"')}`);
    const bad = weft(["replace", "-f", path.join(dir, "replace2.json")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe("weft: IPPool(new): metadata.name: does not exist; use create or apply to make it\n");
    expect(weft(["get", "ippool", "q", "-o", "json"]).stdout).toContain('"natOutgoing": true');
  });
});
