import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { COUNTER_NAMES } from "../dataplane/counters.js";
import { projectRoot } from "../native/index.js";
import { DATAPLANE_FAMILIES, EVENT_LOOP_SAMPLE_MS, metricsRegistry } from "./server.js";

describe("Prometheus metrics", () => {
  it("puts every fast-path counter in exactly one family, named for its unit", () => {
    for (const name of Object.values(COUNTER_NAMES)) {
      const families = DATAPLANE_FAMILIES.filter((f) => f.match(name) !== undefined).map((f) => f.name);
      expect(families, name).toHaveLength(1);
    }
  });

  it("shows bytes as bytes, stage times in seconds and packets as packets", async () => {
    const counters = Object.fromEntries(Object.values(COUNTER_NAMES).map((n) => [n, 0]));
    Object.assign(counters, { tun_rx: 4, bytes_encapsulated: 336, stage_ns_tun_read: 1_570_000_000, tun_batches: 3, busy_poll_hits: 7, drop_no_route: 2 });
    const text = await metricsRegistry({ status: () => ({}), routes: () => [], counters: () => counters as never }).metrics();
    expect(text).toContain('weft_dataplane_packets_total{event="tun_rx"} 4');
    expect(text).toContain('weft_dataplane_bytes_total{direction="encapsulated"} 336');
    expect(text).toContain('weft_dataplane_stage_seconds_total{stage="tun_read"} 1.57');
    expect(text).toContain('weft_dataplane_batches_total{side="tun"} 3');
    expect(text).toContain('weft_dataplane_busy_polls_total{result="hit"} 7');
    expect(text).toContain('weft_dataplane_drops_total{reason="no_route"} 2');
    expect(text).not.toMatch(/packets_total\{event="(bytes_|stage_ns_|busy_poll|tun_batches)/);
  });

  it("says whether the host took every route (cluster nodes only)", async () => {
    const counters = () => ({}) as never;
    const text = (status: unknown) => metricsRegistry({ status: () => status, routes: () => [], counters }).metrics();
    expect(await text({ mode: "datastore", backend: "bgp", applyError: null })).toMatch(/^weft_routes_applied\{backend="bgp"\} 1$/m);
    expect(await text({ mode: "datastore", backend: "bgp", applyError: "ip route replace ...: Nexthop has invalid gateway" })).toMatch(/^weft_routes_applied\{backend="bgp"\} 0$/m);
    expect(await text({ mode: "static" })).not.toMatch(/^weft_routes_applied/m);
  });

  it("counts each BGP session's arrivals at Established (a flap shows as more than one)", async () => {
    const peer = (address: string, established: number) => ({ address, type: "node-to-node mesh", state: "up" as const, since: new Date(), info: "Established", prefixesReceived: 1, prefixesSent: 4, established });
    const bgp = () => ({ enabled: true, peers: [peer("10.30.0.10", 1), peer("10.30.0.12", 3)], ready: true, reason: "" });
    const text = await metricsRegistry({ status: () => ({}), routes: () => [], counters: () => ({}) as never, bgp }).metrics();
    expect(text).toMatch(/^# TYPE weft_bgp_session_established_total counter$/m);
    expect(text).toMatch(/^weft_bgp_session_established_total\{peer="10\.30\.0\.10"\} 1$/m);
    expect(text).toMatch(/^weft_bgp_session_established_total\{peer="10\.30\.0\.12"\} 3$/m);
    expect(text).toMatch(/^weft_bgp_prefixes_sent\{peer="10\.30\.0\.12"\} 4$/m);
  });

  it("counts the prefixes each peer's BGPFilters reject, both ways (peers without filters have no series)", async () => {
    const peer = (address: string, filters?: { names: string[]; importRejected: number; exportRejected: number }) => ({ address, type: "global", state: "up" as const, since: new Date(), info: "Established", prefixesReceived: 3, prefixesSent: 2, established: 1, filters });
    const bgp = () => ({ enabled: true, peers: [peer("10.30.0.1", { names: ["tor"], importRejected: 2, exportRejected: 1 }), peer("10.30.0.12")], ready: true, reason: "" });
    const text = await metricsRegistry({ status: () => ({}), routes: () => [], counters: () => ({}) as never, bgp }).metrics();
    expect(text).toMatch(/^weft_bgp_prefixes_filtered\{peer="10\.30\.0\.1",direction="import"\} 2$/m);
    expect(text).toMatch(/^weft_bgp_prefixes_filtered\{peer="10\.30\.0\.1",direction="export"\} 1$/m);
    expect(text).not.toMatch(/^weft_bgp_prefixes_filtered\{peer="10\.30\.0\.12"/m);
  });

  it("shows this node's blocks and their addresses by pool", async () => {
    const text = await metricsRegistry({ status: () => ({ ipam: [{ pool: "default-ipv4-ippool", blocks: 2, inUse: 5, free: 123 }] }), routes: () => [], counters: () => ({}) as never }).metrics();
    expect(text).toMatch(/^weft_ipam_blocks\{pool="default-ipv4-ippool"\} 2$/m);
    expect(text).toMatch(/^weft_ipam_addresses\{pool="default-ipv4-ippool",state="in_use"\} 5$/m);
    expect(text).toMatch(/^weft_ipam_addresses\{pool="default-ipv4-ippool",state="free"\} 123$/m);
  });

  it("counts the kernel routes weft installed, by type", async () => {
    const text = await metricsRegistry({ status: () => ({ routes: { blackhole: 1, tunnel: 3, direct: 0, external: 2 } }), routes: () => [], counters: () => ({}) as never }).metrics();
    expect(text).toMatch(/^weft_routes\{type="blackhole"\} 1$/m);
    expect(text).toMatch(/^weft_routes\{type="tunnel"\} 3$/m);
    expect(text).toMatch(/^weft_routes\{type="direct"\} 0$/m);
    expect(text).toMatch(/^weft_routes\{type="external"\} 2$/m);
  });

  it("counts the datastore records the node skips (cluster nodes only)", async () => {
    const counters = () => ({}) as never;
    const text = (status: unknown) => metricsRegistry({ status: () => status, routes: () => [], counters }).metrics();
    const datastore = { url: "sqlite:/x.db", reachable: true };
    expect(await text({ mode: "datastore", datastore, unreadableRecords: {} })).toMatch(/^weft_datastore_unreadable_records\{datastore="sqlite:\/x\.db"\} 0$/m);
    expect(await text({ mode: "datastore", datastore, unreadableRecords: { "/weft/x": "not JSON", "/weft/y": "not the shape weft writes there" } })).toMatch(/^weft_datastore_unreadable_records\{datastore="sqlite:\/x\.db"\} 2$/m);
    expect(await text({ mode: "static" })).not.toMatch(/^weft_datastore_unreadable_records\{/m);
  });
});

describe("an idle node's process metrics", () => {
  it("do not wake the process 100 times a second (prom-client's default event-loop sampling): under 30", async () => {
    const server = path.join(projectRoot(), "dist", "router", "control", "server.js");
    const child = spawn(process.execPath, ["--input-type=module", "-e", `const { metricsRegistry } = await import(${JSON.stringify(server)}); metricsRegistry({}, true); console.log("ready"); setInterval(() => {}, 60_000);`], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      const switches = () => Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/task/${child.pid}/status`, "utf8"))![1]);
      await new Promise((r) => setTimeout(r, 500));
      const before = switches();
      await new Promise((r) => setTimeout(r, 2000));
      const perSecond = (switches() - before) / 2;
      console.log(`[metrics] an idle process with the node's metrics: its main thread woke ${perSecond} times a second (every ${EVENT_LOOP_SAMPLE_MS} ms sampling the event loop's delay)`);
      expect(perSecond).toBeLessThan(30);
    } finally {
      child.kill();
    }
  });
});
