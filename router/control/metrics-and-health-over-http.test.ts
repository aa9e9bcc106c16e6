import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError } from "../node/config.js";
import { httpEndpoints, HttpListeners, parseListenAddress } from "./http.js";
import { metricsRegistry, type ControlSources } from "./server.js";

const open: HttpListeners[] = [];
afterEach(() => {
  for (const l of open.splice(0)) l.close();
});

async function listen(endpoints: Parameters<typeof HttpListeners.open>[0]): Promise<HttpListeners> {
  const l = await HttpListeners.open(endpoints);
  open.push(l);
  return l;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

const local = (port = 0, from = "--metrics-address") => ({ host: "127.0.0.1", port, from });

function node(bgp?: ControlSources["bgp"]): ControlSources {
  return { status: () => ({}), routes: () => [], counters: () => ({ tun_rx: 3 }) as never, bgp };
}

describe("--metrics-address and --health-address", () => {
  it.each([
    ["9091", { host: "0.0.0.0", port: 9091 }],
    [":9091", { host: "0.0.0.0", port: 9091 }],
    ["127.0.0.1:9091", { host: "127.0.0.1", port: 9091 }],
    ["localhost:9099", { host: "127.0.0.1", port: 9099 }],
  ])("%s listens on %j", (text, want) => {
    expect(parseListenAddress("--metrics-address", text)).toMatchObject(want);
  });

  it.each([
    ["", /--metrics-address must be \[HOST:\]PORT/],
    ["metrics", /--metrics-address must be \[HOST:\]PORT, HOST an IPv4 address of this host or localhost/],
    ["99999", /--metrics-address: the port must be a whole number from 1 to 65535, not "99999"/],
    ["0", /from 1 to 65535, not "0"/],
    ["10.0.0:9091", /--metrics-address: "10.0.0" is not an IPv4 address or localhost/],
    ["127.0.0.1:", /the port must be a whole number from 1 to 65535, not ""/],
  ])("%j is refused: %s", (text, message) => {
    expect(() => parseListenAddress("--metrics-address", text)).toThrow(ConfigError);
    expect(() => parseListenAddress("--metrics-address", text)).toThrow(message);
  });

  it("takes Calico's Felix variables when the options are not given, with Felix's defaults", () => {
    expect(httpEndpoints({}, {})).toEqual({ metrics: undefined, health: undefined });
    const felix = httpEndpoints({}, { FELIX_PROMETHEUSMETRICSENABLED: "true", FELIX_HEALTHENABLED: "True" });
    expect(felix.metrics).toMatchObject({ host: "0.0.0.0", port: 9091 });
    expect(felix.health).toMatchObject({ host: "127.0.0.1", port: 9099 });
    const set = httpEndpoints({}, { FELIX_PROMETHEUSMETRICSENABLED: "1", FELIX_PROMETHEUSMETRICSHOST: "10.30.0.11", FELIX_PROMETHEUSMETRICSPORT: "9191", FELIX_HEALTHENABLED: "false", FELIX_HEALTHPORT: "1" });
    expect(set).toMatchObject({ metrics: { host: "10.30.0.11", port: 9191 }, health: undefined });
    // The option wins over the variables.
    expect(httpEndpoints({ metricsAddress: "127.0.0.1:9200" }, { FELIX_PROMETHEUSMETRICSENABLED: "true" }).metrics).toMatchObject({ host: "127.0.0.1", port: 9200, from: "--metrics-address" });
  });

  it.each([
    [{ FELIX_PROMETHEUSMETRICSENABLED: "yes" }, /FELIX_PROMETHEUSMETRICSENABLED: expected true or false, not "yes"/],
    [{ FELIX_PROMETHEUSMETRICSENABLED: "true", FELIX_PROMETHEUSMETRICSPORT: "http" }, /FELIX_PROMETHEUSMETRICSPORT: the port must be a whole number from 1 to 65535, not "http"/],
    [{ FELIX_HEALTHENABLED: "true", FELIX_HEALTHHOST: "node-1.example" }, /FELIX_HEALTHHOST: "node-1.example" is not an IPv4 address or localhost/],
  ])("%j stops the node with a message naming the variable", (env, message) => {
    expect(() => httpEndpoints({}, env)).toThrow(message);
  });
});

describe("the HTTP listeners", () => {
  it("serve the node's metrics, the process's own among them, once the node is up (503 before)", async () => {
    const l = await listen({ metrics: local() });
    const [url] = l.urls;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(await get(url)).toEqual({ status: 503, body: "the node is starting\n" });
    const src = node();
    l.serve(src, metricsRegistry(src, true));
    const { status, body } = await get(url);
    expect(status).toBe(200);
    expect(body).toContain('weft_dataplane_packets_total{event="tun_rx"} 3');
    expect(body).toMatch(/^process_cpu_seconds_total \d/m);
    expect(body).toMatch(/^process_resident_memory_bytes \d/m);
    expect(body).toMatch(/^nodejs_eventloop_lag_seconds /m);
    // Only what was asked for: no health, no status on the metrics address.
    expect((await get(url.replace("/metrics", "/readiness"))).status).toBe(404);
    expect(await get(url.replace("/metrics", "/status"))).toEqual({ status: 404, body: "not found: this address serves /metrics\n" });
  });

  it("answer /liveness and /readiness by Calico's rule, with the reason when not ready", async () => {
    const l = await listen({ health: local(0, "--health-address") });
    const [live, ready] = l.urls;
    expect(await get(live)).toEqual({ status: 200, body: '{"live":true}' });
    expect(await get(ready)).toEqual({ status: 503, body: '{"ready":false,"reason":"the node is starting"}' });
    const peers = { enabled: true, peers: [], ready: false, reason: "BGP not Established with 10.30.0.12" };
    const src = node(() => peers);
    l.serve(src, metricsRegistry(src));
    expect(await get(ready)).toEqual({ status: 503, body: '{"ready":false,"reason":"BGP not Established with 10.30.0.12"}' });
    Object.assign(peers, { ready: true, reason: "BGP peers Established" });
    expect(await get(ready)).toEqual({ status: 200, body: '{"ready":true,"reason":"BGP peers Established"}' });
    // A static node has no BGP: ready.
    const quiet = await listen({ health: local(0, "--health-address") });
    quiet.serve(node(), metricsRegistry(node()));
    expect(await get(quiet.urls[1])).toEqual({ status: 200, body: '{"ready":true,"reason":"static routes: no BGP"}' });
  });

  it("share one port when both are asked for on the same address", async () => {
    const probe = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => probe.once("listening", r));
    const port = (probe.address() as net.AddressInfo).port;
    probe.close();
    await new Promise((r) => probe.once("close", r));
    const l = await listen({ metrics: local(port), health: local(port, "--health-address") });
    expect(l.urls).toEqual([`http://127.0.0.1:${port}/metrics`, `http://127.0.0.1:${port}/liveness`, `http://127.0.0.1:${port}/readiness`]);
  });

  it("refuse metrics and health on one port with two addresses, one of them every address (they would collide)", async () => {
    const err = await HttpListeners.open({ metrics: { host: "0.0.0.0", port: 9191, from: "--metrics-address" }, health: local(9191, "--health-address") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe("--metrics-address and --health-address: both use port 9191, on 0.0.0.0 and 127.0.0.1; give them the same address (one listener serves both) or different ports");
  });

  it("refuse a port another process holds, naming the option (the node stops before touching the host)", async () => {
    const taken = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => taken.once("listening", r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const err = await HttpListeners.open({ health: local(0, "--health-address"), metrics: local(port) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe(`--metrics-address: cannot listen on 127.0.0.1:${port}: another process listens on that port (EADDRINUSE)`);
      const gone = await HttpListeners.open({ metrics: { host: "10.255.255.254", port: 9091, from: "FELIX_PROMETHEUSMETRICSENABLED=true with FELIX_PROMETHEUSMETRICSHOST and FELIX_PROMETHEUSMETRICSPORT" } }).catch((e: unknown) => e);
      expect((gone as Error).message).toMatch(/FELIX_PROMETHEUSMETRICSHOST and FELIX_PROMETHEUSMETRICSPORT: cannot listen on 10\.255\.255\.254:9091: no interface of this host has that address \(EADDRNOTAVAIL\)/);
    } finally {
      taken.close();
    }
  });
});
