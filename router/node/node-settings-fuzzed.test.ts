// What a node is started with (Calico's variables, the static-routes file, weft's data
// path switches): whatever the values, the node starts or refuses with a ConfigError
// (exit 2, nothing touched) naming the setting; never another exception.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseMethod } from "./autodetect.js";
import { ConfigError, validateStaticConfig } from "./config.js";
import { defaultPool } from "./default-pool.js";
import { readDataPathEnv } from "./env.js";
import { etcdEndpointsURL, DatastoreURLError } from "../store/store.js";

const RUNS = 2000;

/** Runs f; a ConfigError (or the given class) is a refusal, anything else fails the test. */
function refusesOrTakes(f: () => unknown, errorClass: new (...args: never[]) => Error = ConfigError): boolean {
  try {
    f();
    return true;
  } catch (err) {
    if (!(err instanceof errorClass)) throw err;
    expect((err as Error).message.length).toBeGreaterThan(10);
    return false;
  }
}

const text = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("", " ", "true", "false", "Always", "CrossSubnet", "Never", "always", "26", "20", "33", "019", "10.244.0.0/16", "10.244.0.1/16", "fd00::/48", "0.0.0.0/0", "all()", "has(", "rack == 'a'"));

describe("node settings, fuzzed", () => {
  it(`IP_AUTODETECTION_METHOD: any text is a method or a refusal naming the variable (${RUNS} cases)`, () => {
    const shaped = fc.tuple(fc.constantFrom("first-found", "can-reach=", "interface=", "skip-interface=", "cidr=", "kubernetes-internal-ip", ""), fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("eth.*", "(", "[a-", "10.0.0.0/8,10.1.0.0/16", "10.0.0.1", "a b", ",,"))).map(([a, b]) => a + b);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), shaped), (t) => {
        try {
          parseMethod(t);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          expect(err.message.startsWith("IP_AUTODETECTION_METHOD: ")).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`CALICO_IPV4POOL_* and NO_DEFAULT_POOLS: any values give a valid pool, no pool, or a refusal (${RUNS} cases)`, () => {
    const vars = ["CALICO_IPV4POOL_CIDR", "CALICO_IPV4POOL_BLOCK_SIZE", "CALICO_IPV4POOL_IPIP", "CALICO_IPV4POOL_VXLAN", "CALICO_IPV4POOL_NAT_OUTGOING", "CALICO_IPV4POOL_NODE_SELECTOR", "CALICO_IPV4POOL_DISABLE_BGP_EXPORT", "NO_DEFAULT_POOLS"];
    let pools = 0;
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...vars), text, { maxKeys: 4 }), fc.array(fc.constantFrom("192.168.1.10", "172.16.0.5", "10.244.3.3"), { maxLength: 2 }), (env, hosts) => {
        refusesOrTakes(() => {
          const p = defaultPool(env, hosts);
          if (p) pools++;
        });
      }),
      { numRuns: RUNS },
    );
    console.log(`[fuzz] pool variables: ${pools} of ${RUNS} environments gave a pool, the rest none or a refusal`);
    expect(pools).toBeGreaterThan(0);
  });

  it(`the static-routes file: any document is a configuration or a refusal naming the file (${RUNS} cases)`, () => {
    const valid = { name: "worker-1", address: "10.30.0.11/24", encapsulation: "IPIP", routes: [{ cidr: "192.168.2.0/26", node: "worker-2", address: "10.30.0.12" }] };
    const field = fc.constantFrom("name", "address", "encapsulation", "routes", "uplink", "vni", "vxlanPort", "offloads", "mtu", "tunnelDevice", "bogus");
    const doc = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.tuple(field, fc.oneof(fc.jsonValue({ maxDepth: 2 }), text)).map(([k, v]) => ({ ...valid, [k]: v })));
    fc.assert(
      fc.property(doc, (d) => {
        try {
          validateStaticConfig(d, "routes.yaml");
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          expect(err.message.startsWith("routes.yaml")).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`WEFT_* data path switches: any value is taken or warned about, never thrown (${RUNS} cases)`, () => {
    const names = ["WEFT_OFFLOADS", "WEFT_RX_THREAD", "WEFT_VXLAN_SOURCE_PORTS", "WEFT_BUSY_POLL_US", "WEFT_BATCH", "WEFT_STAGE_TIMING"];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), fc.oneof(text, fc.constantFrom("0", "1", "on", "off", "8", "9", "1000", "1001", "-1", "1e3", "0x10"))), (env) => {
        const warned: string[] = [];
        readDataPathEnv(env, (w) => warned.push(w.name));
        for (const w of warned) expect(names).toContain(w);
      }),
      { numRuns: RUNS },
    );
  });

  it(`Calico's etcd_endpoints / ETCD_ENDPOINTS: any text is a datastore URL or a refusal (${RUNS} cases)`, () => {
    const shaped = fc.array(fc.tuple(fc.constantFrom("http://", "https://", "", "ftp://"), fc.constantFrom("10.0.0.1", "etcd-1", "", "[::1]", "a b"), fc.constantFrom(":2379", "", ":", ":99999", "/"), fc.constantFrom("", "/", "/v3")).map((p) => p.join("")), { maxLength: 3 }).map((eps) => eps.join(","));
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 40 }), shaped), (t) => void refusesOrTakes(() => etcdEndpointsURL(t), DatastoreURLError)), { numRuns: RUNS });
  });
});
