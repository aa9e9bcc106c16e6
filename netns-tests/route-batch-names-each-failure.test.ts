// Route changes go to the kernel in one `ip -batch` process: every command is tried, a
// delete of a route that is already gone is fine, and any other failure is reported
// naming the command, while the rest of the batch still takes effect.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostNamespace, removeNamespace } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";

const run = promisify(execFile);
const NS = "trb-routes";

/** Runs changeRoutes(replace, remove) inside the namespace; returns the error text (or "") and the weft routes after. */
async function change(replace: object[], remove: object[]): Promise<{ error: string; routes: string[] }> {
  const mod = path.join(projectRoot(), "dist", "router", "native", "iproute.js");
  const script = `
    const k = await import(${JSON.stringify(mod)});
    let error = "";
    try { await k.changeRoutes(${JSON.stringify(replace)}, ${JSON.stringify(remove)}); } catch (e) { error = e.message; }
    const routes = (await k.listWeftRoutes()).map((r) => [r.type, r.dst, r.gateway && "via " + r.gateway, r.dev && "dev " + r.dev].filter(Boolean).join(" "));
    console.log(JSON.stringify({ error, routes }));`;
  const { stdout } = await run("ip", ["netns", "exec", NS, process.execPath, "--input-type=module", "-e", script]);
  return JSON.parse(stdout) as { error: string; routes: string[] };
}

describe("route changes in one ip -batch", () => {
  beforeAll(async () => {
    await hostNamespace(NS, "10.30.0.11/24");
  });
  afterAll(async () => {
    await removeNamespace(NS);
  });

  it("installs a whole set, and deleting a route that is not there is no error", async () => {
    const r = await change(
      [
        { dst: "192.168.1.0/26", type: "blackhole" },
        { dst: "192.168.2.0/26", gateway: "10.30.0.12", dev: "up0" },
        { dst: "192.168.3.0/26", gateway: "10.30.0.13", dev: "up0", onlink: true },
      ],
      [{ dst: "192.168.9.0/26" }],
    );
    console.log(`[trb] routes after one batch: ${r.routes.join(" | ")}`);
    expect(r.error).toBe("");
    expect(r.routes).toEqual(["blackhole 192.168.1.0/26", "192.168.2.0/26 via 10.30.0.12 dev up0", "192.168.3.0/26 via 10.30.0.13 dev up0"]);
  });

  it("names each failed command; the rest of the batch still takes effect", async () => {
    const r = await change(
      [
        { dst: "192.168.4.0/26", gateway: "10.30.0.14", dev: "nosuchdev" },
        { dst: "192.168.5.0/26", type: "blackhole" },
      ],
      [{ dst: "192.168.1.0/26" }],
    );
    console.log(`[trb] error: ${r.error}`);
    expect(r.error).toMatch(/^ip route replace 192\.168\.4\.0\/26 via 10\.30\.0\.14 dev nosuchdev proto 87: .*nosuchdev/);
    expect(r.error.split("\n")).toHaveLength(1);
    expect(r.routes).toContain("blackhole 192.168.5.0/26");
    expect(r.routes.some((x) => x.includes("192.168.1.0/26"))).toBe(false);
  });
});
