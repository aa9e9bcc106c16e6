import { describe, expect, it } from "vitest";
import { detectNodeAddress, parseMethod, type HostView } from "./autodetect.js";

// A multi-homed host: a docker bridge first, a management NIC with the default route,
// the cluster NIC, and weft's own TUN holding a tunnel address.
const host: HostView = {
  interfaces: async () => [
    { name: "lo", addresses: ["127.0.0.1/8"] },
    { name: "docker0", addresses: ["172.17.0.1/16"] },
    { name: "mgmt0", addresses: ["10.99.0.2/24"] },
    { name: "eth1", addresses: ["169.254.3.3/16", "10.30.0.11/24", "10.30.0.99/24"] },
    { name: "cali1234567890a", addresses: [] },
    { name: "weft0", addresses: ["192.168.7.1/32"] },
  ],
  defaultRouteDevice: async () => "mgmt0",
  routeGet: async (a) => (a.startsWith("10.40.") ? { dev: "eth1", prefsrc: "10.30.0.11" } : a.startsWith("10.99.") || a === "203.0.113.9" ? { dev: "mgmt0", prefsrc: "10.99.0.2" } : undefined),
  resolve: async (name) => {
    if (name === "peer.example") return "10.40.0.1";
    throw new Error(`getaddrinfo ENOTFOUND ${name}`);
  },
};

const detect = (req: Partial<Parameters<typeof detectNodeAddress>[0]>) => detectNodeAddress({ tunnelDevice: "weft0", ...req }, host);

describe("a multi-homed host picks its underlay address as Calico's methods say", () => {
  it.each([
    [{}, "10.99.0.2/24", "mgmt0", "the default route's interface"],
    [{ method: "first-found" }, "10.99.0.2/24", "mgmt0", "first-found"],
    [{ method: "can-reach=10.40.0.1" }, "10.30.0.11/24", "eth1", "can-reach=10.40.0.1"],
    [{ method: "can-reach=peer.example" }, "10.30.0.11/24", "eth1", "can-reach=peer.example"],
    [{ method: "interface=eth.*" }, "10.30.0.11/24", "eth1", "interface=eth.*"],
    [{ method: "interface=nope, eth1" }, "10.30.0.11/24", "eth1", "interface=nope,eth1"],
    [{ method: "skip-interface=mgmt.*" }, "10.30.0.11/24", "eth1", "skip-interface=mgmt.*"],
    [{ method: "cidr=10.30.0.0/24" }, "10.30.0.11/24", "eth1", "cidr=10.30.0.0/24"],
    [{ method: "cidr=10.30.0.64/26" }, "10.30.0.99/24", "eth1", "cidr=10.30.0.64/26"],
    [{ interface: "eth1" }, "10.30.0.11/24", "eth1", "--interface"],
    [{ ip: "10.30.0.99/24" }, "10.30.0.99/24", "eth1", "given (--ip)"],
    [{ ip: "10.30.0.99", ipFrom: "IP" }, "10.30.0.99/24", "eth1", "given (IP), prefix from eth1"],
    [{ ip: "autodetect", method: "interface=eth1" }, "10.30.0.11/24", "eth1", "interface=eth1"],
  ])("%j -> %s on %s", async (req, cidr, uplink, how) => {
    expect(await detect(req)).toEqual({ cidr, uplink, how });
  });

  it("never picks weft's own tunnel device, link-local addresses or excluded interfaces", async () => {
    expect((await detect({ method: "interface=weft0|eth1" })).uplink).toBe("eth1");
    expect((await detect({ method: "skip-interface=mgmt0,eth1" }).catch((e: Error) => e.message))).toMatch(/every interface with a usable IPv4 address is skipped/);
  });
});

describe("a method that cannot work is refused, saying why", () => {
  it.each([
    ["kubernetes-internal-ip", /reads the Kubernetes Node object, which weft does not/],
    ["can-reach", /"can-reach" is not an autodetection method; use first-found, can-reach=DESTINATION/],
    ["interface=", /interface= needs a value, such as interface=eth\.\*/],
    ["interface=eth[", /interface= "eth\[" is not a regular expression/],
    ["cidr=10.30.0.0/33", /cidr= "10.30.0.0\/33" is not an IPv4 CIDR/],
    ["can-reach=a,b", /can-reach= takes one address or host name/],
  ])("%s", (text, message) => {
    expect(() => parseMethod(text)).toThrow(message);
  });

  it.each([
    [{ method: "interface=wlan.*", methodFrom: "IP_AUTODETECTION_METHOD" }, /IP_AUTODETECTION_METHOD interface=wlan\.\*: no interface with an IPv4 address matches \(those are lo, docker0, mgmt0, eth1\)/],
    [{ method: "interface=cali.*" }, /cali1234567890a match but have no usable IPv4 address/],
    [{ method: "cidr=10.50.0.0/16" }, /cidr=10.50.0.0\/16: no interface has an address in it/],
    [{ method: "can-reach=10.77.0.1" }, /can-reach=10.77.0.1: this host has no route to 10.77.0.1/],
    [{ method: "can-reach=nowhere.example" }, /can-reach=nowhere.example: cannot resolve it \(getaddrinfo ENOTFOUND/],
    [{ interface: "eth1", method: "first-found" }, /--interface and --ip-autodetection-method both choose the address: give one/],
    [{ interface: "wlan0" }, /--interface: wlan0 does not exist on this host/],
    [{ ip: "10.30.0.12/24" }, /--ip: 10.30.0.12 is on no interface of this host; fix it or pass --interface/],
    [{ ip: "10.30.0.11", interface: "mgmt0" }, /--ip: 10.30.0.11 is on no address of mgmt0/],
    [{ ip: "none", ipFrom: "IP" }, /IP: weft routes over IPv4 and needs an IPv4 address/],
    [{ ip: "eth0" }, /--ip: expected an address such as 10.30.0.11\/24 \(or 10.30.0.11, or autodetect\); got "eth0"/],
  ])("%j", async (req, message) => {
    await expect(detect(req)).rejects.toThrow(message);
  });

  it("without a default route, says which options choose the address", async () => {
    const noDefault: HostView = { ...host, defaultRouteDevice: async () => undefined };
    await expect(detectNodeAddress({ tunnelDevice: "weft0" }, noDefault)).rejects.toThrow(/no default route; pass --ip ADDRESS\/PREFIX or --ip-autodetection-method \(first-found, can-reach=/);
  });
});
