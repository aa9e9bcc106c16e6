// weft-cni called with generated bad calls: any command word, container ID, interface
// name, CNI_ARGS and configuration, with CNI_NETNS never a real namespace (so nothing
// on the host is touched). Every call answers as the spec says: exit 0 with one JSON
// result, or exit 1 with one JSON error whose code is the spec's (or weft's 100+), and
// never a stack trace. Runs the built plugin.
import { spawnSync } from "node:child_process";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../native/index.js";
import { tempDir } from "../temp-dir.test-helper.js";

const plugin = path.join(projectRoot(), "dist", "router", "cni", "main.js");
const dir = tempDir("cni-fuzz");
const SPEC_CODES = [1, 2, 3, 4, 5, 6, 7, 11, 50, 100, 101, 102];
const RUNS = 60;

const junk = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("", " ", "a;b", "x=y", "../../etc", "\u00e9", "-rf"));
const call = fc.record({
  command: fc.oneof(fc.constantFrom("ADD", "CHECK", "VERSION", "STATUS"), junk),
  containerID: fc.oneof(fc.constantFrom("abc123", "c-1.2_3"), junk),
  netns: fc.oneof(fc.constantFrom("", "/nonexistent/netns", "/run/netns/weft-fuzz-none", "relative/ns", "/dev/null", "/tmp"), junk.map((j) => `/nonexistent/${j}`)),
  ifname: fc.oneof(fc.constantFrom("eth0", "", "sixteen-chars-xx", "a/b", "..", "e th0"), junk),
  args: fc.oneof(fc.constantFrom("", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p", "IgnoreUnknown=1", ";;", "=x", "noequals"), junk),
  conf: fc.oneof(
    junk,
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.record({
      cniVersion: fc.oneof(fc.constantFrom("1.0.0", "0.4.0", "1.1.0", "9.9.9"), junk),
      name: fc.oneof(fc.constant("k8s-pod-network"), junk),
      type: fc.constant("weft-cni"),
      datastore: fc.oneof(fc.constant(`sqlite:${path.join(dir, "w.db")}`), fc.constantFrom("nope", "etcd://", "sqlite:"), junk),
      mtu: fc.oneof(fc.constant(1450), fc.integer({ min: -5, max: 70000 })),
      ipam: fc.oneof(fc.constant({ type: "calico-ipam" }), fc.record({ type: junk, ipv4_pools: fc.array(junk, { maxLength: 2 }) })),
    }).map((c) => JSON.stringify(c)),
  ),
});

describe("weft-cni, fuzzed calls", () => {
  it(`answers every call with one JSON result or one JSON error of a spec code, never a stack trace (${RUNS} calls)`, () => {
    const codes = new Map<string, number>();
    fc.assert(
      fc.property(call, (c) => {
        const r = spawnSync(process.execPath, [plugin], {
          input: c.conf,
          encoding: "utf8",
          timeout: 20_000,
          env: { PATH: process.env.PATH, CNI_COMMAND: c.command, CNI_CONTAINERID: c.containerID, CNI_NETNS: c.netns, CNI_IFNAME: c.ifname, CNI_ARGS: c.args, CNI_PATH: "/usr/lib/cni", WEFT_DATASTORE: `sqlite:${path.join(dir, "default.db")}` },
        });
        const what = `${JSON.stringify(c)} -> exit ${r.status}: ${r.stdout}${r.stderr}`;
        expect(r.stderr, what).not.toMatch(/\n\s+at /);
        expect([0, 1], what).toContain(r.status);
        const lines = r.stdout.trim().split("\n").filter(Boolean);
        if (r.status === 0 && c.command === "STATUS") expect(lines, what).toEqual([]);
        else {
          expect(lines, what).toHaveLength(1);
          const out = JSON.parse(lines[0]) as { code?: number; msg?: string; cniVersion?: string };
          expect(typeof out.cniVersion, what).toBe("string");
          if (r.status === 1) {
            expect(SPEC_CODES, what).toContain(out.code);
            expect(out.msg?.length, what).toBeGreaterThan(0);
          }
          const key = r.status === 0 ? "answered" : `code ${out.code}`;
          codes.set(key, (codes.get(key) ?? 0) + 1);
        }
      }),
      { numRuns: RUNS },
    );
    console.log(`[cni-fuzz] ${RUNS} calls: ${JSON.stringify(Object.fromEntries(codes))}`);
  }, 120_000);
});
