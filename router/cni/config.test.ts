import { describe, expect, it } from "vitest";
import { parseNetConf } from "./config.js";

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
