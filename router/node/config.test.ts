import { describe, expect, it } from "vitest";
import { reloadedConfig, validateStaticConfig } from "./config.js";

const good = {
  name: "worker-1",
  address: "10.30.0.11/24",
  encapsulation: "IPIP",
  routes: [
    { cidr: "192.168.133.192/26", node: "worker-2", address: "10.30.0.12" },
    { cidr: "192.168.97.192/26", node: "worker-3", address: "10.30.1.13", vtepMAC: "66:00:11:22:33:44" },
  ],
};

describe("static node config", () => {
  it("accepts the issue's example and fills defaults", () => {
    const c = validateStaticConfig(good);
    expect(c.tunnelDevice).toBe("weft0");
    expect(c.vni).toBe(4096);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ["a missing name", { ...good, name: undefined }, /config: name: is required/],
    ["an address without prefix", { ...good, address: "10.30.0.11" }, /config: address: expected an address with its prefix/],
    ["an unknown encapsulation", { ...good, encapsulation: "GRE" }, /config: encapsulation:/],
    ["a route with a host-bit CIDR", { ...good, routes: [{ ...good.routes[0], cidr: "192.168.133.193/26" }] }, /routes\[0\]\.cidr: expected a strictly masked/],
    ["a route with a bad next hop", { ...good, routes: [good.routes[0], { ...good.routes[1], address: "10.30.1.300" }] }, /routes\[1\]\.address: expected an IPv4 address/],
    ["an unknown field", { ...good, tunnel: "x" }, /config: \(top level\): unknown field "tunnel"/],
    ["a bad VTEP MAC", { ...good, routes: [{ ...good.routes[1], vtepMAC: "66:00" }] }, /routes\[0\]\.vtepMAC: expected a MAC/],
    ["a duplicated route", { ...good, routes: [good.routes[0], good.routes[0]] }, /routes\[1\]\.cidr: .* listed twice/],
    ["a route via this node's own address", { ...good, routes: [{ ...good.routes[0], address: "10.30.0.11" }] }, /routes\[0\]\.address: 10\.30\.0\.11 is this node's own address/],
    ["a default route (it would replace the host's)", { ...good, routes: [{ ...good.routes[0], cidr: "0.0.0.0/0" }] }, /routes\[0\]\.cidr: 0\.0\.0\.0\/0 contains this node's address 10\.30\.0\.11; routing it through the tunnel would cut the underlay/],
    ["a route over the underlay subnet", { ...good, routes: [good.routes[0], { ...good.routes[1], cidr: "10.30.0.0/24" }] }, /routes\[1\]\.cidr: 10\.30\.0\.0\/24 contains this node's address/],
    ["a route over another node's address", { ...good, routes: [good.routes[0], { ...good.routes[1], cidr: "10.30.1.0/24" }] }, /routes\[1\]\.cidr: 10\.30\.1\.0\/24 contains node worker-3's address 10\.30\.1\.13/],
    ["two nodes at one address", { ...good, routes: [good.routes[0], { ...good.routes[1], address: "10.30.0.12" }] }, /routes\[1\]\.address: 10\.30\.0\.12 is already node worker-2's address \(routes\[0\]\)/],
    ["one node at two addresses", { ...good, routes: [good.routes[0], { ...good.routes[1], node: "worker-2" }] }, /routes\[1\]\.address: node worker-2 is at 10\.30\.0\.12 in routes\[0\]/],
  ];
  for (const [what, doc, re] of bad) {
    it(`rejects ${what} with one line naming the field`, () => {
      expect(() => validateStaticConfig(doc)).toThrow(re);
    });
  }

  describe("reloaded on SIGHUP", () => {
    const running = validateStaticConfig(good, "worker-1.yaml");
    it("takes the file's routes, encapsulation and mtu; nothing to restart for", () => {
      const next = validateStaticConfig({ ...good, encapsulation: "VXLAN", mtu: 1400, routes: [good.routes[0]] }, "worker-1.yaml");
      const r = reloadedConfig(running, next, "worker-1.yaml");
      expect(r.needRestart).toEqual([]);
      expect(r.config).toEqual({ ...running, encapsulation: "VXLAN", mtu: 1400, routes: [good.routes[0]] });
    });
    it("names what only a restart takes and keeps the running values of those", () => {
      const next = validateStaticConfig({ ...good, name: "worker-9", vni: 5000, offloads: { tso: false }, routes: [good.routes[1]] }, "worker-1.yaml");
      const r = reloadedConfig(running, next, "worker-1.yaml");
      expect(r.needRestart).toEqual(["name", "vni", "offloads"]);
      expect(r.config).toEqual({ ...running, routes: [good.routes[1]] });
    });
    it("checks the routes against the running address, not one the file moved to", () => {
      // The file moves the node to 10.40.0.11 and routes 10.30.0.0/16, which holds the running address.
      const next = validateStaticConfig({ ...good, address: "10.40.0.11/24", routes: [{ cidr: "10.30.0.0/16", node: "worker-2", address: "10.40.0.12" }] }, "worker-1.yaml");
      expect(() => reloadedConfig(running, next, "worker-1.yaml")).toThrow(/worker-1\.yaml: routes\[0\]\.cidr: 10\.30\.0\.0\/16 contains this node's address 10\.30\.0\.11/);
    });
  });
});
