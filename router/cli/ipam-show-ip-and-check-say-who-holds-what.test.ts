// `weft ipam show --ip A`: whether an address is in use and by whom (handle, node,
// block, pool), or, when it is free, where it would come from. `weft ipam check`: what
// IPAM still holds for deleted nodes, released with --release. Runs the built command.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { weftWithDatastore } from "./built-command.test-helper.js";

const { dir, weft, useDatastore } = weftWithDatastore("ipshow", { quiet: true });
const assign = (node: string, handle: string, pool?: string) => {
  const r = weft(["ipam", "assign", "--node", node, "--handle", handle, ...(pool ? ["--pool", pool] : [])]);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ address: string }>)[0].address;
};
const show = (ip: string) => {
  const r = weft(["ipam", "show", "--ip", ip]);
  console.log(`[ipshow] ipam show --ip ${ip} (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r;
};

describe("weft ipam show --ip", () => {
  let pod = "";
  let tunnel = "";
  beforeAll(() => {
    const pool = (name: string, cidr: string) => `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"${name}"},"spec":{"cidr":"${cidr}","blockSize":28}}`;
    writeFileSync(path.join(dir, "pools.json"), `${pool("p1", "10.244.0.0/16")}\n---\n${pool("p2", "10.245.0.0/16")}`);
    expect(weft(["apply", "-f", path.join(dir, "pools.json")]).status).toBe(0);
    tunnel = assign("worker-1", "tunnel-addr-worker-1", "p1");
    pod = assign("worker-1", "k8s-pod-network.0123456789ab", "p1");
    assign("worker-2", "k8s-pod-network.fedcba987654", "p2");
  });

  it("an address in use: its handle, node, block and pool", () => {
    const r = show(pod);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^IP ${pod.replaceAll(".", "\\.")} is in use\\n  handle: k8s-pod-network\\.0123456789ab\\n  node: worker-1\\n  block: 10\\.244\\.\\d+\\.\\d+/28, affine to worker-1\\n  pool: IPPool\\(p1\\) 10\\.244\\.0\\.0/16\\n$`));
  });

  it("a node's tunnel address says so", () => {
    expect(show(tunnel).stdout).toContain("handle: tunnel-addr-worker-1 (node worker-1's tunnel address)");
  });

  it("a free address in a claimed block, in a pool with no block for it, in no pool", () => {
    const [a, b, c, d] = pod.split(".").map(Number);
    expect(show(`${a}.${b}.${c}.${d + 5}`).stdout).toMatch(/^IP \S+ is not assigned\n  pool: IPPool\(p1\) 10\.244\.0\.0\/16\n  block: 10\.244\.\d+\.\d+\/28, affine to worker-1\n$/);
    expect(show("10.244.255.1").stdout).toBe("IP 10.244.255.1 is not assigned\n  pool: IPPool(p1) 10.244.0.0/16\n  block: none claimed yet\n");
    expect(show("10.99.0.1").stdout).toBe("IP 10.99.0.1 is not assigned, and is in no IP pool\n");
  });

  it("a reserved address says which IPReservation holds it back (and when it was given out first)", () => {
    const [a, b, c, d] = pod.split(".").map(Number);
    const free = `${a}.${b}.${c}.${d + 6}`;
    writeFileSync(path.join(dir, "ipr.json"), `{"apiVersion":"projectcalico.org/v3","kind":"IPReservation","metadata":{"name":"keep"},"spec":{"reservedCIDRs":["${free}","${pod}"]}}`);
    expect(weft(["apply", "-f", path.join(dir, "ipr.json")]).status).toBe(0);
    expect(show(free).stdout).toContain(`  reserved: IPReservation(keep) ${free} (never given out)\n`);
    expect(show(pod).stdout).toContain(`  reserved: IPReservation(keep) ${pod} (given out before it was reserved)\n`);
    expect(show("10.99.0.1").stdout).toBe("IP 10.99.0.1 is not assigned, and is in no IP pool\n");
  });

  it("a bad address: exit 2, naming the option", () => {
    const r = show("10.244.0");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--ip must be an IPv4 address, not "10.244.0"/);
  });
});

describe("weft ipam check", () => {
  const check = (args: string[] = []) => {
    const r = weft(["ipam", "check", ...args]);
    console.log(`[ipcheck] ipam check ${args.join(" ")} (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    return r;
  };
  const gone = { pod: "", tunnel: "", freed: "" };
  let stray = "";
  const re = (ip: string) => ip.replaceAll(".", "\\.");
  beforeAll(() => {
    useDatastore("check.db");
    const pool = (name: string, cidr: string) => `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"${name}"},"spec":{"cidr":"${cidr}","blockSize":28}}`;
    writeFileSync(path.join(dir, "check-pools.json"), `${pool("p1", "10.244.0.0/16")}\n---\n${pool("p2", "10.245.0.0/16")}`);
    expect(weft(["apply", "-f", path.join(dir, "check-pools.json")]).status).toBe(0);
    // worker-1 is registered and uses its tunnel address; worker-3 is registered but its
    // Node names another tunnel address; worker-2 was deleted without its IPAM.
    const t1 = assign("worker-1", "tunnel-addr-worker-1", "p1");
    assign("worker-1", "k8s-pod-network.aaaa", "p1");
    stray = assign("worker-3", "tunnel-addr-worker-3", "p1");
    gone.tunnel = assign("worker-2", "tunnel-addr-worker-2", "p1");
    gone.pod = assign("worker-2", "k8s-pod-network.bbbb", "p1");
    // An empty block of worker-2's: a block of its own in p2, its one address released.
    gone.freed = assign("worker-2", "k8s-pod-network.cccc", "p2");
    expect(weft(["ipam", "release", "--ip", gone.freed]).status).toBe(0);
    const node = (name: string, addr: string, tunnel: string) => `{"apiVersion":"projectcalico.org/v3","kind":"Node","metadata":{"name":"${name}"},"spec":{"bgp":{"ipv4Address":"${addr}"},"ipv4VXLANTunnelAddr":"${tunnel}"}}`;
    writeFileSync(path.join(dir, "nodes.json"), `${node("worker-1", "10.30.0.11/24", t1)}\n---\n${node("worker-3", "10.30.0.13/24", "10.244.255.250")}`);
    const r = weft(["apply", "-f", path.join(dir, "nodes.json")]);
    expect(r.status, r.stderr).toBe(0);
  });

  it("names each leak with its node, block and handle, says how to release it, and exits 1", () => {
    const r = check();
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^Checked 2 nodes, 4 blocks, 5 addresses:\n/);
    expect(r.stdout).toMatch(new RegExp(`address of a deleted node +\\| ${re(gone.pod)} +\\| worker-2 .*\\| k8s-pod-network\\.bbbb`));
    expect(r.stdout).toMatch(new RegExp(`tunnel address of a deleted node +\\| ${re(gone.tunnel)} +\\| worker-2 .*\\| tunnel-addr-worker-2`));
    expect(r.stdout).toMatch(/empty block affine to a deleted node +\| - +\| worker-2 +\| 10\.245\.\d+\.\d+\/28/);
    expect(r.stdout).toMatch(new RegExp(`tunnel address its node does not use +\\| ${re(stray)} +\\| worker-3`));
    expect(r.stdout).toContain('3 of them belong to deleted nodes: "weft ipam check --release" releases them.');
    expect(r.stdout).not.toContain("aaaa");
  });

  it("--release releases what was the deleted node's and leaves the live nodes' alone", () => {
    const r = check(["--release"]);
    expect(r.stdout).toMatch(new RegExp(`released: .*${re(gone.pod)}`));
    expect(r.stdout).toMatch(new RegExp(`released: .*${re(gone.tunnel)}`));
    expect(r.stdout).toMatch(/released: .*10\.245\.\d+\.\d+\/28/);
    expect(r.status).toBe(1); // worker-3's unused tunnel address is left to the operator
    expect(weft(["ipam", "show", "--ip", gone.pod]).stdout).toMatch(/is not assigned/);
    expect(weft(["ipam", "release", "--ip", stray, "--force"]).status).toBe(0);
    const after = check();
    expect(after.stdout).toMatch(/^Checked 2 nodes, \d+ blocks, 2 addresses: nothing leaked\.\n$/);
    expect(after.status).toBe(0);
  });
});
