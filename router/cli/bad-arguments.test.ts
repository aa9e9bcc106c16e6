// The weft command with bad arguments: exit 2, one line naming the option and what was
// given, and nothing started or created. Runs the built command (npm test builds first).
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CLI, runWeft } from "./built-command.test-helper.js";
import { interfaceName, markMaskBit, wholeNumber } from "./args.js";
import { openDatastore } from "../store/store.js";
import { tempDir } from "../temp-dir.test-helper.js";

const weft = runWeft;

describe("whole-number and interface-name options", () => {
  it("take values in range and refuse the rest, naming the option", () => {
    expect(wholeNumber("--n", "25", 1, 200)).toBe(25);
    expect(wholeNumber("--n", "0", 0, 10)).toBe(0);
    for (const bad of ["abc", "", "1.5", "-1", "201", "1e2", "0x10"]) {
      expect(() => wholeNumber("--n", bad, 1, 200), bad).toThrow(`--n must be a whole number from 1 to 200, not "${bad}"`);
    }
    expect(interfaceName("--tunnel", "weft0")).toBe("weft0");
    for (const bad of ["", "a/b", "sixteen-chars-xx", "..", "a b"]) expect(() => interfaceName("--tunnel", bad), bad).toThrow(/--tunnel must be an interface name/);
  });

  it("a mark mask (Calico's iptablesMarkMask) gives its lowest bit; zero, more than 32 bits or not a number is refused", () => {
    expect(markMaskBit("--m", "0xffff0000")).toBe(0x10000);
    expect(markMaskBit("--m", "0xFF000000")).toBe(0x1000000);
    expect(markMaskBit("--m", "0x80000000")).toBe(0x80000000);
    expect(markMaskBit("--m", "4294901760")).toBe(0x10000);
    for (const bad of ["0", "0x0", "0x100000000", "4294967296", "-1", "ffff0000", "", "0x"]) {
      expect(() => markMaskBit("--m", bad), bad).toThrow(`--m must be a nonzero 32-bit mask, hex (0xffff0000) or decimal, not "${bad}"`);
    }
  });
});

describe("weft with bad arguments", () => {
  const dir = tempDir("args");
  writeFileSync(path.join(dir, "unmasked.json"), '{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.1.0.1/16"}}');
  const cases: Array<[string[], RegExp]> = [
    [["bench", "bgp", "--nodes", "abc"], /--nodes must be a whole number from 1 to 200, not "abc"/],
    [["bench", "bgp", "--nodes", "1"], /at least 2 nodes/],
    [["bench", "bgp", "--prefix", "X"], /lab prefix "X" must be/],
    [["bench", "dataplane", "--seconds", "0"], /--seconds must be a whole number from 1 to 120, not "0"/],
    [["ipam", "assign", "--node", "a", "--handle", "h", "--count", "abc", "--datastore", `sqlite:${dir}/a.db`], /--count must be a whole number/],
    [["get", "ippool", "--datastore", `sqlite:${dir}/typo/weft.db`], /no such file \("weft apply" or "weft node run" creates it\)/],
    [["ipam", "show", "--datastore", `sqlite:${dir}/none.db`], /no such file/],
    [["get", "ippool", "--datastore", "mysql://x"], /unknown kind; use sqlite:PATH/],
    [["node", "reset", "--tunnel", ""], /--tunnel must be an interface name/],
    [["node", "run", "--datastore", `sqlite:${dir}/m.db`, "--iptables-mark-mask", "0"], /--iptables-mark-mask \(or FELIX_IPTABLESMARKMASK\) must be a nonzero 32-bit mask/],
    [["ipam", "configure", "--strictaffinity", "yes", "--datastore", `sqlite:${dir}/c.db`], /--strictaffinity must be true or false, not "yes"/],
    [["ipam", "configure", "--max-blocks-per-host", "-1", "--datastore", `sqlite:${dir}/c.db`], /--max-blocks-per-host must be a whole number from 0 to 2147483647, not "-1"/],
    [["ipam", "configure", "--datastore", `sqlite:${dir}/c.db`], /ipam configure needs --strictaffinity true\|false or --max-blocks-per-host N/],
    [["ipam", "release", "--ip", "notanip", "--datastore", `sqlite:${dir}/r.db`], /--ip must be an IPv4 address, not "notanip"/],
    [["node", "run", "--datastore", `sqlite:${dir}/n.db`, "--name", "Bad Name"], /--name: Node\(Bad Name\): metadata.name: must be lowercase/],
    [["node", "run", "--datastore", `sqlite:${dir}/n.db`, "--name", "a", "--interface", "nope0"], /--interface: nope0 does not exist on this host/],
    [["lab", "exec", "pod-9", "--", "true"], /no lab host or pod "pod-9"; choose from master, worker-1/],
    [["lab", "up", "--prefix", "BAD"], /lab prefix "BAD" must be 1-8 lowercase letters/],
    [["lab", "apply", "-f", path.join(dir, "unmasked.json"), "--prefix", "zz"], /unmasked\.json: document 1: IPPool\(p\): spec\.cidr: IPPool CIDR must be strictly masked/],
  ];
  for (const [args, message] of cases) {
    it(`weft ${args.join(" ")}: exit 2 and says why`, () => {
      const r = weft(args);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.status).toBe(2);
    });
  }

  it("weft delete bgpfilter that BGPPeers still name: deleted, and each such BGPPeer named (its sessions now run without it)", () => {
    const ds = ["--datastore", `sqlite:${dir}/filters.db`];
    const peer = (name: string, filters: string[]) => `{"apiVersion":"projectcalico.org/v3","kind":"BGPPeer","metadata":{"name":"${name}"},"spec":{"peerIP":"10.30.0.1","asNumber":65003,"filters":${JSON.stringify(filters)}}}`;
    const filter = (name: string) => `{"apiVersion":"projectcalico.org/v3","kind":"BGPFilter","metadata":{"name":"${name}"},"spec":{"importV4":[{"action":"Reject"}]}}`;
    writeFileSync(path.join(dir, "filters.yaml"), [filter("tor"), filter("tor-v2"), peer("tor-a", ["tor", "tor-v2"]), peer("tor-b", ["tor-v2"])].join("\n---\n"));
    expect(weft(["apply", "-f", path.join(dir, "filters.yaml"), ...ds]).status).toBe(0);
    const r = weft(["delete", "bgpfilter", "tor", ...ds]);
    expect([r.status, r.stdout]).toEqual([0, "BGPFilter(tor) deleted\nBGPPeer(tor-a) still names BGPFilter(tor): its sessions now run without it (take it out of its filters, or apply it again)\n"]);
    expect(weft(["delete", "bgpfilter", "tor-v2", ...ds]).stdout).toBe("BGPFilter(tor-v2) deleted\nBGPPeer(tor-a) still names BGPFilter(tor-v2): its sessions now run without it (take it out of its filters, or apply it again)\nBGPPeer(tor-b) still names BGPFilter(tor-v2): its sessions now run without it (take it out of its filters, or apply it again)\n");
    expect(weft(["get", "bgpfilter", ...ds]).stdout).toBe("NAME\n");
  });

  it("weft delete of a resource that does not exist: exit 1 naming it, after deleting the rest; -s makes it no error", () => {
    const ds = ["--datastore", `sqlite:${dir}/del.db`];
    const pool = (name: string, cidr: string) => `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"${name}"},"spec":{"cidr":"${cidr}"}}`;
    writeFileSync(path.join(dir, "pools.yaml"), `${pool("p1", "10.244.0.0/16")}\n---\n${pool("p2", "10.245.0.0/16")}\n`);
    expect(weft(["apply", "-f", path.join(dir, "pools.yaml"), ...ds]).status).toBe(0);
    const r = weft(["delete", "ippool", "nope", "p1", ...ds]);
    expect(r.stdout).toBe("IPPool(p1) deleted\n");
    expect(r.stderr).toMatch(/resource does not exist: IPPool\(nope\)/);
    expect(r.status).toBe(1);
    const s = weft(["delete", "ippool", "nope", "p2", "-s", ...ds]);
    expect(s.stdout).toBe("IPPool(nope) does not exist (skipped)\nIPPool(p2) deleted\n");
    expect(s.status).toBe(0);
  });

  it("weft delete ippool while pods use its addresses: kept, exit 1 saying how to move them; a node's tunnel address does not count; --force deletes and ipam show still lists the blocks", () => {
    const ds = ["--datastore", `sqlite:${dir}/inuse.db`];
    writeFileSync(path.join(dir, "inuse.json"), '{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"pods"},"spec":{"cidr":"10.8.0.0/16"}}');
    expect(weft(["apply", "-f", path.join(dir, "inuse.json"), ...ds]).status).toBe(0);
    expect(weft(["ipam", "assign", "--node", "w1", "--handle", "tunnel-addr-w1", ...ds]).status).toBe(0);
    expect(weft(["ipam", "assign", "--node", "w1", "--handle", "k8s-pod-network.c1", ...ds]).status).toBe(0);
    const r = weft(["delete", "ippool", "pods", ...ds]);
    expect(r.stderr).toMatch(/IPPool\(pods\) still has 1 pod address in use \(on w1\); deleting it would cut those pods off\. Set spec\.disabled: true/);
    expect(r.status).toBe(1);
    expect(weft(["get", "ippool", ...ds]).stdout).toMatch(/pods/);
    expect(weft(["ipam", "release", "--handle", "k8s-pod-network.c1", ...ds]).status).toBe(0);
    expect(weft(["delete", "ippool", "pods", ...ds]).stdout).toBe("IPPool(pods) deleted\n");
    expect(weft(["apply", "-f", path.join(dir, "inuse.json"), ...ds]).status).toBe(0);
    expect(weft(["ipam", "assign", "--node", "w1", "--handle", "k8s-pod-network.c2", ...ds]).status).toBe(0);
    const f = weft(["delete", "ippool", "pods", "--force", ...ds]);
    expect(f.stdout).toBe("IPPool(pods) deleted\n");
    expect(weft(["ipam", "show", ...ds]).stdout).toMatch(/Block of deleted IPPool\(pods\) \(host:w1\) \| 10\.8\.\d+\.\d+\/26/);
  });

  it("weft node run with the address of another registered node: exit 2 naming it and how to remove it, before touching anything", () => {
    const ds = ["--datastore", `sqlite:${dir}/clash.db`];
    writeFileSync(path.join(dir, "old.json"), '{"apiVersion":"projectcalico.org/v3","kind":"Node","metadata":{"name":"old-name"},"spec":{"bgp":{"ipv4Address":"127.0.0.1/8"}}}');
    expect(weft(["apply", "-f", path.join(dir, "old.json"), ...ds]).status).toBe(0);
    const hadTunnel = existsSync("/sys/class/net/weft0");
    const r = weft(["node", "run", ...ds, "--name", "new-name", "--ip", "127.0.0.1/8", "--interface", "lo", "--control", path.join(dir, "clash.sock")]);
    expect(r.stderr).toMatch(/node "old-name" is already using the IPv4 address 127\.0\.0\.1; if that node is gone \(a renamed host\), delete it with "weft delete node old-name"/);
    expect(r.status).toBe(2);
    expect(existsSync("/sys/class/net/weft0")).toBe(hadTunnel);
    expect(weft(["get", "ippool", ...ds]).stdout).not.toMatch(/default-ipv4-ippool/);
  });

  it("weft node run with a control socket whose directory cannot be made: one line, before touching anything", () => {
    const hadTunnel = existsSync("/sys/class/net/weft0");
    const r = weft(["node", "run", "--datastore", `sqlite:${dir}/ctl.db`, "--name", "a", "--ip", "127.0.0.1/8", "--interface", "lo", "--control", "/proc/weft-none/a.sock"]);
    expect(r.stderr.trim()).toBe("weft: control socket /proc/weft-none/a.sock: cannot make its directory (ENOENT)");
    expect(r.status).toBe(1);
    expect(existsSync("/sys/class/net/weft0")).toBe(hadTunnel);
    expect(existsSync(`${dir}/ctl.db`)).toBe(false);
  });

  it("weft ipam release --ip of a node's tunnel address: refused, naming the node (it keeps using it); --force releases it", () => {
    const ds = ["--datastore", `sqlite:${dir}/tunrel.db`];
    writeFileSync(path.join(dir, "tunrel.json"), '{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.6.0.0/16"}}');
    expect(weft(["apply", "-f", path.join(dir, "tunrel.json"), ...ds]).status).toBe(0);
    const [{ address }] = JSON.parse(weft(["ipam", "assign", "--node", "w9", "--handle", "tunnel-addr-w9", ...ds]).stdout) as Array<{ address: string }>;
    const r = weft(["ipam", "release", "--ip", address, ...ds]);
    expect(r.stderr.trim()).toBe(`weft: ${address} is node w9's tunnel address; "weft delete node w9" releases it with the node (--force releases it now, and the node keeps using it)`);
    expect(r.status).toBe(1);
    expect(weft(["ipam", "release", "--ip", address, "--force", ...ds]).stdout).toBe(`released: ${address}\n`);
  });

  it("weft delete node releases the node's tunnel address and empty blocks, deletes its own BGPConfiguration, and says which addresses stay", () => {
    const ds = ["--datastore", `sqlite:${dir}/delnode.db`];
    // gone-1 has a BGPConfiguration of its own (node.gone-1), which goes with it.
    writeFileSync(path.join(dir, "nodes.yaml"), [...["gone-1", "gone-2"].map((n) => `{"apiVersion":"projectcalico.org/v3","kind":"Node","metadata":{"name":"${n}"},"spec":{}}`), '{"apiVersion":"projectcalico.org/v3","kind":"BGPConfiguration","metadata":{"name":"node.gone-1"},"spec":{"listenPort":1790}}'].join("\n---\n"));
    writeFileSync(path.join(dir, "pool10.json"), '{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.7.0.0/16"}}');
    expect(weft(["apply", "-f", path.join(dir, "pool10.json"), ...ds]).status).toBe(0);
    expect(weft(["apply", "-f", path.join(dir, "nodes.yaml"), ...ds]).status).toBe(0);
    for (const n of ["gone-1", "gone-2"]) {
      const r = weft(["ipam", "assign", "--node", n, "--handle", `tunnel-addr-${n}`, ...ds]);
      expect([r.status, r.stderr]).toEqual([0, ""]);
    }
    // For a node nobody registered: assigned, with a note that nothing routes it.
    const ghost = weft(["ipam", "assign", "--node", "ghost", "--handle", "g1", ...ds]);
    expect(ghost.status).toBe(0);
    expect(ghost.stderr).toBe('weft: note: no Node(ghost) is registered: its blocks are routed nowhere until one is ("weft ipam check" lists them)\n');
    expect(weft(["ipam", "release", "--handle", "g1", ...ds]).status).toBe(0);
    expect(weft(["ipam", "assign", "--node", "gone-2", "--handle", "k8s-pod-network.c9", ...ds]).status).toBe(0);
    expect(weft(["delete", "node", "gone-1", ...ds]).stdout).toMatch(/^Node\(gone-1\) deleted; released its tunnel address 10\.7\.\d+\.\d+, block 10\.7\.\d+\.\d+\/26; deleted its BGPConfiguration\(node\.gone-1\)\n$/);
    expect(weft(["get", "bgpconfig", ...ds]).stdout).not.toContain("node.gone-1");
    expect(weft(["delete", "node", "gone-2", ...ds]).stdout).toMatch(/^Node\(gone-2\) deleted; released its tunnel address 10\.7\.\d+\.\d+; 1 address in its blocks stays allocated/);
    const blocks = weft(["ipam", "show", "--show-blocks", ...ds]).stdout;
    expect(blocks).not.toMatch(/gone-1/);
    expect(blocks).toMatch(/Block \(host:gone-2\) .*\| 1 +\|/);
  });

  it("ipam assign --count past a pool's end: prints the addresses it did assign, then exit 1 saying how many", () => {
    const ds = ["--datastore", `sqlite:${dir}/tiny.db`];
    writeFileSync(path.join(dir, "tiny.json"), '{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"tiny"},"spec":{"cidr":"10.9.0.0/30","blockSize":30}}');
    expect(weft(["apply", "-f", path.join(dir, "tiny.json"), ...ds]).status).toBe(0);
    const r = weft(["ipam", "assign", "--node", "a", "--handle", "h", "--count", "5", ...ds]);
    expect((JSON.parse(r.stdout) as Array<{ address: string }>).map((a) => a.address).sort()).toEqual(["10.9.0.0", "10.9.0.1", "10.9.0.2", "10.9.0.3"]);
    expect(r.stderr).toMatch(/assigned 4 of 5: No IPs available/);
    expect(r.status).toBe(1);
  });

  it("weft get against an etcd that does not answer: exit 1 at once, naming the datastore", () => {
    const t0 = Date.now();
    const r = weft(["get", "ippool", "--datastore", "etcd://127.0.0.1:1"]);
    expect(r.stderr).toMatch(/datastore etcd:\/\/127\.0\.0\.1:1 did not answer \(connect ECONNREFUSED 127\.0\.0\.1:1\); is etcd running there\?/);
    expect(r.status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("weft apply of a Node whose address has no prefix: taken as a /32 (as Calico does), with a note on the CrossSubnet trap", () => {
    const file = path.join(dir, "bare-node.yaml");
    writeFileSync(file, "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: w9}\nspec: {bgp: {ipv4Address: 10.30.0.19}}\n");
    const r = weft(["apply", "-f", file, "--datastore", `sqlite:${dir}/bare.db`]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("Node(w9) created\n");
    expect(r.stderr).toMatch(/note: Node\(w9\) has ipv4Address 10\.30\.0\.19, a \/32: no other node is in its subnet, so CrossSubnet pools encapsulate all its traffic/);
  });

  it("weft node run takes Calico's NODENAME as --name, and names it when it is bad", () => {
    const r = spawnSync(process.execPath, [CLI, "node", "run", "--datastore", `sqlite:${dir}/nn.db`], { encoding: "utf8", timeout: 20_000, env: { ...process.env, NODENAME: "Bad_Name" } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^weft: NODENAME: Node\(Bad_Name\): metadata\.name: must be lowercase/);
    expect(existsSync(path.join(dir, "nn.db"))).toBe(false);
  });

  it("created no datastore file for the commands that only read or were refused", () => {
    expect(existsSync(path.join(dir, "typo"))).toBe(false);
    expect(existsSync(path.join(dir, "none.db"))).toBe(false);
    expect(existsSync(path.join(dir, "a.db"))).toBe(false);
    expect(existsSync(path.join(dir, "n.db"))).toBe(false);
  });
});

describe("a datastore record weft did not write", () => {
  const dir = tempDir("records");
  it("get lists the rest with a note naming it, get of it is one error line, apply replaces it, delete removes it", async () => {
    const ds = ["--datastore", `sqlite:${dir}/w.db`];
    const poolDoc = (name: string, cidr: string) => `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"${name}"},"spec":{"cidr":"${cidr}"}}`;
    writeFileSync(path.join(dir, "good.json"), poolDoc("good", "10.9.0.0/16"));
    expect(weft(["apply", "-f", path.join(dir, "good.json"), ...ds]).status).toBe(0);
    const store = await openDatastore(`sqlite:${dir}/w.db`);
    await store.txn([{ op: "create", key: "/weft/resources/ippools/bad", value: "{not json" }]);
    await store.close();
    const list = weft(["get", "ippool", ...ds]);
    expect([list.status, list.stdout.split("\n")[1]]).toEqual([0, expect.stringMatching(/^good +10\.9\.0\.0\/16/)]);
    expect(list.stderr).toMatch(/^weft: note: skipped datastore records weft cannot read .*\n  \/weft\/resources\/ippools\/bad: not JSON/);
    const one = weft(["get", "ippool", "bad", ...ds]);
    expect([one.status, one.stderr.trim().split("\n")]).toEqual([1, [expect.stringMatching(/^weft: datastore record \/weft\/resources\/ippools\/bad is not a resource weft can read \(not JSON/)]]);
    writeFileSync(path.join(dir, "bad.json"), poolDoc("bad", "10.8.0.0/16"));
    expect(weft(["apply", "-f", path.join(dir, "bad.json"), ...ds]).stdout).toBe("IPPool(bad) configured\n");
    const after = weft(["get", "ippool", ...ds]);
    expect([after.stderr, after.stdout]).toEqual(["", expect.stringContaining("10.8.0.0/16")]);
    expect(weft(["delete", "ippool", "bad", ...ds]).status).toBe(0);
  });
});
