import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseNetConf } from "./config.js";
import { CNI, CniError } from "./errors.js";

const base = { cniVersion: "1.0.0", name: "k8s-pod-network", type: "weft-cni", nodename: "worker-1" };
const parse = (extra: Record<string, unknown>) => parseNetConf(JSON.stringify({ ...base, ...extra }), { datastore: "sqlite:/var/lib/weft/weft.db" });

describe("weft-cni's network configuration", () => {
  it("takes Calico's etcd_endpoints as the datastore (https: TLS)", () => {
    expect(parse({ etcd_endpoints: "http://10.0.0.1:2379" }).datastore).toBe("etcd://10.0.0.1:2379");
    expect(parse({ etcd_endpoints: "https://10.0.0.1:2379, https://10.0.0.2:2379/" }).datastore).toBe("etcds://10.0.0.1:2379,10.0.0.2:2379");
    expect(parse({ etcd_endpoints: "http://10.0.0.1:2379", datastore_type: "etcdv3" }).datastore).toBe("etcd://10.0.0.1:2379");
    expect(parse({}).datastore).toBe("sqlite:/var/lib/weft/weft.db");
  });

  it("takes Calico's log_file_path and log_level", () => {
    const c = parse({ log_file_path: "/var/log/calico/cni/cni.log", log_level: "Warning" });
    expect(c.log_file).toBe("/var/log/calico/cni/cni.log");
    expect(c.logLevel).toBe("warn");
    expect(parse({}).logLevel).toBe("info");
  });

  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ["a log level it does not know", { log_level: "chatty" }, /log_level "chatty": use debug, info, warning or error/],
    ["a log level named as something every object has", { log_level: "constructor" }, /log_level "constructor": use debug, info, warning or error/],
    ["two different log files", { log_file: "/a.log", log_file_path: "/b.log" }, /keep one/],
    ["Calico's Kubernetes datastore", { datastore_type: "kubernetes" }, /datastore_type kubernetes: weft keeps its state in SQLite or etcd/],
    ["etcd_endpoints without a scheme", { etcd_endpoints: "10.0.0.1:2379" }, /etcd_endpoints: etcd endpoints "10\.0\.0\.1:2379": expected http:\/\/HOST:PORT/],
    ["etcd_endpoints mixing http and https", { etcd_endpoints: "http://a:1,https://b:1" }, /all with one scheme/],
    ["both datastore and etcd_endpoints", { datastore: "etcd://a:1", etcd_endpoints: "http://a:1" }, /keep one/],
    ["an IPAM weft does not run", { ipam: { type: "host-local" } }, /ipam.type host-local/],
  ];
  for (const [what, extra, msg] of refused) {
    it(`refuses ${what} with code 7`, () => {
      let err: unknown;
      try {
        parse(extra);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: number }).code).toBe(7);
      expect(`${(err as Error).message} ${(err as { details?: string }).details}`).toMatch(msg);
    });
  }
});

describe("weft-cni's network configuration, fuzzed: a CNI error with a spec code, never a crash", () => {
  const RUNS = 3000;
  const codes = new Map<number, number>();
  const outcome = (stdin: string) => {
    try {
      parseNetConf(stdin, { datastore: "sqlite:/var/lib/weft/weft.db" });
      codes.set(0, (codes.get(0) ?? 0) + 1);
    } catch (err) {
      if (!(err instanceof CniError)) throw new Error(`not a CniError for ${stdin.slice(0, 300)}: ${String(err)}`);
      expect([CNI.INCOMPATIBLE_VERSION, CNI.DECODE, CNI.INVALID_CONFIG]).toContain(err.code);
      expect(err.message.length).toBeGreaterThan(0);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
  };
  const fields = ["cniVersion", "name", "type", "nodename", "datastore", "etcd_endpoints", "datastore_type", "ipam", "log_level", "log_file", "log_file_path", "mtu", "ipam.type", "ipam.ipv4_pools", "ipam.assign_ipv4", "prevResult", "runtimeConfig", "args", "__proto__"];
  const plausible = fc.constantFrom<unknown>("1.0.0", "0.4.0", "1.1.0", "2.0.0", "weft-cni", "calico-ipam", "etcd://10.0.0.1:2379", "http://10.0.0.1:2379", "sqlite:/tmp/w.db", "etcdv3", "kubernetes", "debug", "Warning", 1450, ["default-ipv4-ippool"], "false", "worker-1", "Worker_1");

  it(`arbitrary text and JSON (${RUNS} cases each)`, () => {
    fc.assert(fc.property(fc.string({ maxLength: 100 }), outcome), { numRuns: RUNS });
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => outcome(JSON.stringify(v))), { numRuns: RUNS });
  });

  it(`a valid configuration with fields set to any JSON value or a plausible one (${RUNS} cases)`, () => {
    codes.clear();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...fields), fc.oneof(fc.jsonValue({ maxDepth: 2 }), plausible)), { minLength: 1, maxLength: 4 }), (sets) => {
        const conf: Record<string, unknown> = JSON.parse(JSON.stringify(base));
        for (const [f, v] of sets) {
          const [top, sub] = f.split(".");
          if (sub) conf[top] = { ...(typeof conf[top] === "object" && conf[top] !== null && !Array.isArray(conf[top]) ? (conf[top] as object) : { type: "calico-ipam" }), [sub]: v };
          else Object.defineProperty(conf, top, { value: v, enumerable: true, writable: true, configurable: true });
        }
        outcome(JSON.stringify(conf));
      }),
      { numRuns: RUNS },
    );
    console.log(`[fuzz] weft-cni configurations: ${JSON.stringify(Object.fromEntries([...codes].map(([c, n]) => [c === 0 ? "taken" : `code ${c}`, n])))}`);
    expect(codes.get(0)).toBeGreaterThan(0);
    expect(codes.get(CNI.INVALID_CONFIG)).toBeGreaterThan(0);
  });
});
