import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Listed, writeJSON } from "./server.js";

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Serves body once with writeJSON; returns what a client reads and how many times the event loop turned meanwhile. */
async function served(body: unknown): Promise<{ text: string; turns: number }> {
  let turns = 0;
  let ticking = true;
  const tick = () => {
    if (!ticking) return;
    turns++;
    setImmediate(tick);
  };
  const server = http.createServer((_req, res) => {
    setImmediate(tick);
    void writeJSON(res, body).finally(() => (ticking = false));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/routes`);
  return { text: await res.text(), turns };
}

describe("a control answer with long lists (weft node routes beside a peer's 100,000 routes)", () => {
  it("is the same JSON as written in one go, each item through its view", async () => {
    const paths = Array.from({ length: 4500 }, (_, i) => ({ prefix: `20.${i >> 8}.${i & 255}.0/24`, peer: "10.30.0.1" }));
    const body = { fastPath: [{ cidr: "192.168.1.0/26" }], bgp: new Listed(paths, (p) => ({ cidr: p.prefix, peer: p.peer, stale: false })), bgpFiltered: new Listed([]), note: { n: 1 }, none: null };
    const { text } = await served(body);
    expect(JSON.parse(text)).toEqual({ fastPath: [{ cidr: "192.168.1.0/26" }], bgp: paths.map((p) => ({ cidr: p.prefix, peer: p.peer, stale: false })), bgpFiltered: [], note: { n: 1 }, none: null });
  });

  it("a list at the top (a static node's routes) and an empty one", async () => {
    expect(JSON.parse((await served([1, 2, 3])).text)).toEqual([1, 2, 3]);
    expect(JSON.parse((await served([])).text)).toEqual([]);
  });

  it("waits for a reader slower than the node (a pipe into a pager), and the whole answer arrives, with no listener left behind", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    const items = Array.from({ length: 50_000 }, (_, i) => ({ cidr: `20.${i >> 16}.${(i >> 8) & 255}.0/24`, peer: "10.30.0.1" }));
    let left = -1;
    const server = http.createServer((_req, res) => void writeJSON(res, { bgp: new Listed(items) }).then(() => (left = res.listenerCount("drain") + res.listenerCount("close"))));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const text = await new Promise<string>((resolve) => {
      http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/routes`, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.pause();
        setTimeout(() => res.resume(), 300); // the node's socket buffer fills meanwhile
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve(body));
      });
    });
    await new Promise((r) => setTimeout(r, 50));
    process.off("warning", onWarning);
    expect(JSON.parse(text).bgp).toHaveLength(50_000);
    expect(warnings).toEqual([]);
    expect(left).toBeLessThanOrEqual(1); // the server's own close listener, if any
  });

  it("lets the event loop (the data path) run between slices of 2,000 items, not once for the whole answer", async () => {
    const items = Array.from({ length: 100_000 }, (_, i) => ({ cidr: `20.${i >> 16}.${(i >> 8) & 255}.0/24`, peer: "10.30.0.1", asPath: [65001], communities: [] }));
    const t = performance.now();
    const { text, turns } = await served({ bgp: new Listed(items) });
    console.log(`[routes-answer] 100,000 routes: ${(text.length / 1e6).toFixed(1)} MB in ${Math.round(performance.now() - t)} ms, the event loop turned ${turns} times meanwhile`);
    expect(JSON.parse(text).bgp).toHaveLength(100_000);
    expect(turns).toBeGreaterThanOrEqual(49);
  });
});
