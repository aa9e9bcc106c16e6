// Live sessions on loopback: two speakers exchange routes, and a raw TCP client
// feeds a speaker every malformed message RFC 4271 section 6 names.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { Speaker } from "./speaker.js";
import { advertisedCommunities, communityTexts } from "./communities.js";
import type { PeerConfig } from "./session.js";
import { decodeMessage, encodeKeepalive, encodeOpen, encodeRouteRefresh, encodeUpdate, frameLength, type Notification } from "./wire.js";

const log = pino({ level: process.env.WEFT_TEST_LOG ?? "silent" });
let port = 21000 + Math.floor(Math.random() * 2000);
const speakers: Speaker[] = [];
afterEach(async () => {
  await Promise.all(speakers.splice(0).map((s) => s.stop(false)));
});

function speaker(routerId: string, opts: { clusterId?: string; holdTime?: number; port?: number; as?: number } = {}): Speaker {
  const s = new Speaker({ as: opts.as ?? 64512, routerId, holdTime: opts.holdTime ?? 90, restartTime: 120, restarting: false, localAddress: routerId, listenPort: opts.port ?? port, listenAddress: routerId, clusterId: opts.clusterId }, log);
  speakers.push(s);
  return s;
}
const peer = (address: string, passive: boolean, extra: Partial<PeerConfig> = {}): PeerConfig => ({ address, port, as: 64512, type: "node-to-node mesh", passive, ...extra });
const until = async (what: string, f: () => boolean, ms = 8000) => {
  const t = Date.now() + ms;
  while (!f()) {
    if (Date.now() > t) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
/** The messages a raw socket receives, decoded as they complete. */
function reader(sock: net.Socket): Array<ReturnType<typeof decodeMessage>> {
  const got: Array<ReturnType<typeof decodeMessage>> = [];
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const n = frameLength(buf);
      if (n === undefined || buf.length < n) break;
      got.push(decodeMessage(buf.subarray(0, n)));
      buf = buf.subarray(n);
    }
  });
  sock.on("error", () => {});
  return got;
}
const routes = (s: Speaker) => s.rib.bestPaths().map((p) => `${p.prefix} via ${p.attrs.nextHop}`).sort();

/** Two listening speakers on a fresh port, peered as the mesh peers them: a (the lower address) waits for b. */
async function twoPeered(x: string, y: string, o: { exportsA?: string[]; exportsB?: string[]; sessionA?: Partial<PeerConfig>; sessionB?: Partial<PeerConfig> } = {}): Promise<{ a: Speaker; b: Speaker }> {
  port++;
  const a = speaker(x);
  const b = speaker(y);
  await a.listen();
  await b.listen();
  if (o.exportsA) a.setExports(o.exportsA);
  if (o.exportsB) b.setExports(o.exportsB);
  a.setPeers([peer(y, true, o.sessionA)]);
  b.setPeers([peer(x, false, o.sessionB ?? o.sessionA)]);
  return { a, b };
}

/** A route reflector and two clients on a fresh port, peered as a peerSelector BGPPeer peers them; toC2: settings of the reflector's session with c2. */
async function reflectorWithClients(at: string, clusterId: string, c1At: string, c2At: string, toC2: Partial<PeerConfig> = {}): Promise<{ rr: Speaker; c1: Speaker; c2: Speaker }> {
  port++;
  const rr = speaker(at, { clusterId });
  const c1 = speaker(c1At);
  const c2 = speaker(c2At);
  for (const s of [rr, c1, c2]) await s.listen();
  rr.setPeers([peer(c1At, true, { rrClient: true, type: "global" }), peer(c2At, true, { rrClient: true, type: "global", ...toC2 })]);
  for (const c of [c1, c2]) c.setPeers([peer(at, false, { type: "global" })]);
  return { rr, c1, c2 };
}

describe("two weft speakers in a mesh", () => {
  it("establish one way (the lower address waits), exchange blocks with next hop self and LOCAL_PREF 100, withdraw", async () => {
    const { a, b } = await twoPeered("127.0.0.11", "127.0.0.12", { exportsA: ["10.1.0.0/26"], exportsB: ["10.2.0.0/26"] });
    await until("routes", () => routes(a).length === 1 && routes(b).length === 1);
    expect(a.status()[0]).toMatchObject({ state: "up", info: "Established", type: "node-to-node mesh" });
    expect(routes(a)).toEqual(["10.2.0.0/26 via 127.0.0.12"]);
    expect(b.rib.bestPaths()[0].attrs).toMatchObject({ origin: 0, asPath: [], localPref: 100 });
    a.setExports([]);
    await until("withdrawal", () => routes(b).length === 0);
  });

  it("communities from prefixAdvertisements go out on the routes inside their CIDR, and follow a change", async () => {
    const { a, b } = await twoPeered("127.0.0.13", "127.0.0.14");
    const spec = { communities: [{ name: "rack", value: "64512:300:100" }], prefixAdvertisements: [{ cidr: "10.5.0.0/16", communities: ["rack", "64512:120"] }] };
    a.setExports(["10.5.1.0/26", "10.6.0.0/26"], advertisedCommunities(spec));
    await until("routes", () => routes(b).length === 2);
    const attrs = (prefix: string) => b.rib.bestPaths().find((p) => p.prefix === prefix)!.attrs;
    expect(attrs("10.5.1.0/26")).toMatchObject({ communities: [((64512 << 16) | 120) >>> 0], largeCommunities: [[64512, 300, 100]] });
    expect(communityTexts(attrs("10.5.1.0/26"))).toEqual(["64512:120", "64512:300:100"]);
    expect(attrs("10.6.0.0/26").communities).toBeUndefined();
    a.setExports(["10.5.1.0/26", "10.6.0.0/26"]);
    await until("the communities taken off", () => attrs("10.5.1.0/26").largeCommunities === undefined);
    expect(attrs("10.5.1.0/26").communities).toBeUndefined();
  });

  it("BGPPeer filters: import rules keep received routes out of use, export rules keep blocks from the peer, and a changed filter applies to the live session without a restart", async () => {
    const rejectIn = (cidr: string) => ({ names: ["tor"], import: [{ action: "Reject" as const, cidr, matchOperator: "In" as const }], export: [] });
    const { a, b } = await twoPeered("127.0.0.91", "127.0.0.92", {
      exportsA: ["10.7.0.0/26", "10.7.1.0/26"],
      exportsB: ["10.8.0.0/26", "10.8.1.0/26"],
      sessionA: { filters: { names: ["tor"], import: [{ action: "Reject", cidr: "10.8.1.0/24", matchOperator: "In" }], export: [{ action: "Reject", cidr: "10.7.1.0/26", matchOperator: "Equal" }] } },
      sessionB: {},
    });
    await until("filtered routes", () => routes(a).length === 1 && routes(b).length === 1 && a.status()[0].filters?.exportRejected === 1);
    expect(routes(a)).toEqual(["10.8.0.0/26 via 127.0.0.92"]);
    expect(routes(b)).toEqual(["10.7.0.0/26 via 127.0.0.91"]);
    expect(a.status()[0]).toMatchObject({ prefixesReceived: 2, filters: { names: ["tor"], importRejected: 1, exportRejected: 1 } });
    expect(a.rib.filteredPaths().map((p) => p.prefix)).toEqual(["10.8.1.0/26"]);
    // A new filter: what was rejected comes in and goes out, what it rejects now goes, the session stays.
    a.setPeers([peer("127.0.0.92", true, { filters: rejectIn("10.8.0.0/24") })]);
    await until("the new filter applied", () => routes(a).join() === "10.8.1.0/26 via 127.0.0.92" && routes(b).length === 2);
    expect(a.status()[0]).toMatchObject({ established: 1, filters: { importRejected: 1, exportRejected: 0 } });
    // No filters at all: everything, still the same session.
    a.setPeers([peer("127.0.0.92", true)]);
    await until("unfiltered", () => routes(a).length === 2);
    expect(a.status()[0].established).toBe(1);
    expect(a.status()[0].filters).toBeUndefined();
  });

  it("a peer where nothing listens on its port shows as calicoctl words it: start, Active Socket: Connection refused", async () => {
    port++;
    const a = speaker("127.0.0.15");
    await a.listen();
    a.setPeers([peer("127.0.0.16", false)]);
    await until("the refused connect", () => a.status()[0]?.info.includes("Connection refused"));
    expect(a.status()[0]).toMatchObject({ address: "127.0.0.16", state: "start", info: "Active Socket: Connection refused" });
  });

  it("a peer that stays unreachable is logged at info once, its retries (the same failure) at debug; a different failure is said again", async () => {
    port++;
    const lines: Array<{ level: number; to?: string; reason?: string; msg: string }> = [];
    const capture = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const a = new Speaker({ as: 64512, routerId: "127.0.0.17", holdTime: 90, restartTime: 120, restarting: false, localAddress: "127.0.0.17", listenPort: port, listenAddress: "127.0.0.17" }, capture);
    speakers.push(a);
    await a.listen();
    a.setPeers([peer("127.0.0.18", false)]);
    const states = () => lines.filter((l) => l.msg === "BGP state");
    await until("two connect attempts, both refused", () => states().filter((l) => l.reason === "connecting").length >= 2 && a.status()[0]?.info === "Active Socket: Connection refused", 10_000);
    const info = states().filter((l) => l.level === 30);
    console.log(`[speaker] a dead peer after 2 attempts: ${info.length} state lines at info, ${states().length - info.length} at debug`);
    expect(info.map((l) => `${l.to} ${l.reason}`)).toEqual(["Connect connecting", "Idle Socket: Connection refused"]);
    expect(a.status()[0]).toMatchObject({ state: "start", info: "Active Socket: Connection refused" });
    // Something listens now but speaks no BGP: another failure, said at info.
    const server = net.createServer((c) => c.destroy()).listen(port, "127.0.0.18");
    try {
      await until("the new failure at info", () => states().some((l) => l.level === 30 && l.reason === "Socket: connection closed"), 10_000);
    } finally {
      server.close();
    }
  });

  it("a peer that goes away (NOTIFICATION) has its routes withdrawn", async () => {
    const { a, b } = await twoPeered("127.0.0.21", "127.0.0.22", { exportsB: ["10.9.0.0/26"] });
    await until("routes", () => routes(a).length === 1);
    await b.stop(false);
    await until("withdrawal", () => routes(a).length === 0);
    expect(a.status()[0].state).not.toBe("up");
  });

  it("a changed AS number restarts the sessions under the new AS; a changed listen port or address moves the listener (applied while running, as BIRD's reconfigure does)", async () => {
    const { a, b } = await twoPeered("127.0.0.41", "127.0.0.42", { exportsB: ["10.4.0.0/26"] });
    await until("routes", () => routes(a).length === 1);
    // Both sides change AS (as every node does when BGPConfiguration.asNumber changes).
    expect(await a.reconfigure({ as: 64600, listenPort: port, listenAddress: "127.0.0.41", restartTime: 120 })).toEqual(["as"]);
    expect(await b.reconfigure({ as: 64600, listenPort: port, listenAddress: "127.0.0.42", restartTime: 120 })).toEqual(["as"]);
    a.setPeers([peer("127.0.0.42", true, { as: 64600 })]);
    b.setPeers([peer("127.0.0.41", false, { as: 64600 })]);
    await until("re-established under AS 64600", () => routes(a).length === 1 && a.status()[0].state === "up");
    expect(a.rib.bestPaths()[0].attrs.localPref).toBe(100); // still iBGP
    // A new port on a: b follows (its peer entry names the port), a's old port is closed.
    const old = port;
    const next = port + 500;
    expect(await a.reconfigure({ as: 64600, listenPort: next, listenAddress: "127.0.0.41", restartTime: 120 })).toEqual(["listenPort"]);
    expect(a.port).toBe(next);
    const connect = (host: string, p: number) => new Promise((resolve, reject) => net.connect({ host, port: p }).on("connect", function (this: net.Socket) { this.destroy(); resolve("connected"); }).on("error", reject));
    await expect(connect("127.0.0.41", old)).rejects.toThrow(/ECONNREFUSED/);
    // Every address (bindMode None): another loopback address reaches the listener too.
    await expect(connect("127.0.0.99", next)).rejects.toThrow(/ECONNREFUSED/);
    expect(await a.reconfigure({ as: 64600, listenPort: next, listenAddress: undefined, restartTime: 120 })).toEqual(["listenAddress"]);
    expect(await connect("127.0.0.99", next)).toBe("connected");
  });

  it("a BGP password (TCP MD5, RFC 2385): the same key on both sides reaches Established; a wrong key never does", async () => {
    const { a, b } = await twoPeered("127.0.0.81", "127.0.0.82", { exportsB: ["10.8.0.0/26"], sessionA: { password: "right" }, sessionB: { password: "wrong" } });
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.status()[0].state).not.toBe("up"); // the kernel drops unsigned or mis-signed segments
    b.setPeers([peer("127.0.0.81", false, { password: "right" })]);
    await until("Established with matching keys", () => routes(a).length === 1, 15_000);
    expect(routes(a)).toEqual(["10.8.0.0/26 via 127.0.0.82"]);
  }, 20_000);

  it("BGPFilter operations: an export rule's community and AS-path prepend reach the peer; an import rule's community is on the route as stored; a change re-applies them from the route as received", async () => {
    const tagOut = { names: ["te"], import: [], export: [{ action: "Accept" as const, cidr: "10.73.0.0/16", matchOperator: "In" as const, operations: [{ addCommunity: { value: "65000:1" } }, { prependASPath: { prefix: [64512, 64512] } }] }] };
    const tagIn = (value: string) => ({ names: ["mark"], import: [{ action: "Accept" as const, operations: [{ addCommunity: { value } }] }], export: [] });
    const { a, b } = await twoPeered("127.0.0.97", "127.0.0.98", { exportsA: ["10.73.1.0/26"], exportsB: ["10.74.0.0/26"], sessionA: { filters: tagOut }, sessionB: { filters: tagIn("65000:2") } });
    await until("routes both ways", () => routes(a).length === 1 && routes(b).length === 1);
    // b received a's block with a's operations, then added its own import community.
    expect(b.rib.bestPaths()[0].attrs).toMatchObject({ asPath: [{ type: 2, asns: [64512, 64512] }], communities: [((65000 << 16) | 1) >>> 0, ((65000 << 16) | 2) >>> 0] });
    b.setPeers([peer("127.0.0.97", false, { filters: tagIn("65000:3") })]);
    await until("the new import community, the old one gone", () => JSON.stringify(b.rib.bestPaths()[0].attrs.communities) === JSON.stringify([((65000 << 16) | 1) >>> 0, ((65000 << 16) | 3) >>> 0]));
    expect(b.status()[0].established).toBe(1);
  });

  it("localASNumber: the session speaks as that AS (OPEN, AS_PATH, eBGP towards a peer of the node's own AS)", async () => {
    const { a, b } = await twoPeered("127.0.0.95", "127.0.0.96", { exportsA: ["10.71.0.0/26"], exportsB: ["10.72.0.0/26"], sessionA: { localAs: 65100 }, sessionB: { as: 65100 } });
    await until("routes both ways", () => routes(a).length === 1 && routes(b).length === 1);
    expect(b.rib.bestPaths()[0].attrs).toMatchObject({ asPath: [{ type: 2, asns: [65100] }] });
    expect(b.rib.bestPaths()[0].attrs.localPref).toBeUndefined(); // eBGP
    expect(a.rib.bestPaths()[0].attrs).toMatchObject({ asPath: [{ type: 2, asns: [64512] }] });
  });

  it("ttlSecurity (GTSM, RFC 5082): with it on both sides the session comes up; a peer sending with an ordinary TTL is never heard", async () => {
    const { a, b } = await twoPeered("127.0.0.83", "127.0.0.84", { exportsB: ["10.8.2.0/26"], sessionA: { ttlSecurity: 1 }, sessionB: {} });
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.status()[0].state).not.toBe("up"); // b's segments arrive with TTL 64: a's kernel drops them
    b.setPeers([peer("127.0.0.83", false, { ttlSecurity: 1 })]);
    await until("Established with GTSM on both sides", () => routes(a).length === 1, 15_000);
    expect(routes(a)).toEqual(["10.8.2.0/26 via 127.0.0.84"]);
  }, 20_000);

  it("a route reflector passes client routes to other clients with ORIGINATOR_ID and CLUSTER_LIST", async () => {
    const { rr, c1, c2 } = await reflectorWithClients("127.0.0.31", "1.1.1.1", "127.0.0.32", "127.0.0.33");
    c1.setExports(["10.32.0.0/26"]);
    c2.setExports(["10.33.0.0/26"]);
    await until("reflection", () => routes(c1).length === 1 && routes(c2).length === 1);
    expect(routes(c2)).toEqual(["10.32.0.0/26 via 127.0.0.32"]);
    expect(c2.rib.bestPaths()[0].attrs).toMatchObject({ originatorId: "127.0.0.32", clusterList: ["1.1.1.1"] });
  });

  it("nextHopMode Self on a client's session puts the reflector in the path of what it reflects to that client; the others keep the originator's", async () => {
    const { rr, c1, c2 } = await reflectorWithClients("127.0.0.37", "1.1.1.3", "127.0.0.38", "127.0.0.39", { nextHopMode: "Self" });
    c1.setExports(["10.38.0.0/26"]);
    c2.setExports(["10.39.0.0/26"]);
    await until("reflection", () => routes(c1).length === 1 && routes(c2).length === 1);
    expect(routes(c2)).toEqual(["10.38.0.0/26 via 127.0.0.37"]);
    expect(routes(c1)).toEqual(["10.39.0.0/26 via 127.0.0.39"]);
    expect(rr.exported().find((e) => e.peer === "127.0.0.39")?.attrs.nextHop).toBe("127.0.0.37");
  });

  it("a reflector's export rule with source RemotePeers holds back the routes it reflects to that client, not its own", async () => {
    const noReflected = { names: ["own-only"], import: [], export: [{ action: "Reject" as const, source: "RemotePeers" as const }] };
    const { rr, c1, c2 } = await reflectorWithClients("127.0.0.34", "1.1.1.2", "127.0.0.35", "127.0.0.36", { filters: noReflected });
    rr.setExports(["10.34.0.0/26"]);
    c1.setExports(["10.35.0.0/26"]);
    await until("the reflector's own block at c2, and c1's reflected route held back", () => routes(c2).length === 1 && rr.status().find((p) => p.address === "127.0.0.36")?.filters?.exportRejected === 1);
    expect(routes(c2)).toEqual(["10.34.0.0/26 via 127.0.0.34"]);
    expect(routes(c1)).toEqual(["10.34.0.0/26 via 127.0.0.34"]);
  });
});

describe("routes inside the pools are passed on, as Calico's BIRD exports every route inside a pool", () => {
  // n1 and n2 in a mesh (AS 64512), n1 also peered with a ToR (AS 65000); the pools are 10.40.0.0/16.
  async function meshAndTor(): Promise<{ n1: Speaker; n2: Speaker; tor: Speaker; toTor: PeerConfig }> {
    port++;
    const n1 = speaker("127.0.0.41");
    const n2 = speaker("127.0.0.42");
    const tor = speaker("127.0.0.43", { as: 65000 });
    for (const s of [n1, n2, tor]) await s.listen();
    const inPools = (cidr: string) => cidr.startsWith("10.40.");
    n1.setExports(["10.40.0.0/26"], undefined, inPools);
    n2.setExports(["10.40.1.0/26"], undefined, inPools);
    tor.setExports(["10.40.9.0/26", "10.50.0.0/24"]);
    const toTor = peer("127.0.0.43", false, { as: 65000, type: "global" });
    n1.setPeers([peer("127.0.0.42", true), toTor]);
    n2.setPeers([peer("127.0.0.41", false)]);
    tor.setPeers([peer("127.0.0.41", true, { type: "global" })]);
    return { n1, n2, tor, toTor };
  }

  it("a ToR peered with one node learns the other node's block from it (next hop self, its AS in front); keepOriginalNextHop gives the owner's address instead, without a restart; a withdrawal follows", async () => {
    const { n1, n2, tor, toTor } = await meshAndTor();
    await until("both blocks at the ToR", () => routes(tor).length === 2);
    expect(routes(tor)).toEqual(["10.40.0.0/26 via 127.0.0.41", "10.40.1.0/26 via 127.0.0.41"]);
    const passed = tor.rib.bestPaths().find((p) => p.prefix === "10.40.1.0/26")!.attrs;
    expect(passed).toMatchObject({ origin: 0, asPath: [{ type: 2, asns: [64512] }] });
    expect(passed.localPref).toBeUndefined(); // stays inside the AS
    // What n1 says it sent (weft node routes' bgpExported): the same, per peer.
    const sent = n1.exported().filter((e) => e.peer === "127.0.0.43");
    expect(sent.map((e) => `${e.prefix} via ${e.attrs.nextHop}`)).toEqual(["10.40.0.0/26 via 127.0.0.41", "10.40.1.0/26 via 127.0.0.41"]);
    n1.setPeers([peer("127.0.0.42", true), { ...toTor, nextHopMode: "Keep" }]);
    await until("the owner's next hop", () => routes(tor).includes("10.40.1.0/26 via 127.0.0.42"));
    expect(routes(tor)).toEqual(["10.40.0.0/26 via 127.0.0.41", "10.40.1.0/26 via 127.0.0.42"]);
    expect(n1.status().find((p) => p.address === "127.0.0.43")).toMatchObject({ established: 1, prefixesSent: 2 });
    n2.setExports([]);
    await until("the withdrawal passed on", () => routes(tor).length === 1);
  });

  it("a route inside the pools learned from the ToR goes on to the mesh with the ToR as next hop; one outside the pools does not", async () => {
    const { n1, n2 } = await meshAndTor();
    await until("the ToR's routes at n1", () => routes(n1).length === 3);
    await until("the pool route at n2", () => routes(n2).includes("10.40.9.0/26 via 127.0.0.43"));
    expect(routes(n2)).toEqual(["10.40.0.0/26 via 127.0.0.41", "10.40.9.0/26 via 127.0.0.43"]);
    expect(n2.rib.bestPaths().find((p) => p.prefix === "10.40.9.0/26")!.attrs).toMatchObject({ asPath: [{ type: 2, asns: [65000] }], localPref: 100 });
  });

  it("prefixAdvertisements' communities go on the routes passed on inside their CIDR, as on the node's own", async () => {
    const { n1, tor } = await meshAndTor();
    n1.setExports(["10.40.0.0/26"], advertisedCommunities({ prefixAdvertisements: [{ cidr: "10.40.0.0/16", communities: ["64512:120"] }] }), (c) => c.startsWith("10.40."));
    const community = ((64512 << 16) | 120) >>> 0;
    await until("the community on both blocks at the ToR", () => tor.rib.bestPaths().filter((p) => p.attrs.communities?.includes(community)).length === 2);
    expect(communityTexts(tor.rib.bestPaths().find((p) => p.prefix === "10.40.1.0/26")!.attrs)).toEqual(["64512:120"]);
  });

  it("a mesh peer de-configured at n1 (its session ended, nothing else changed): the ToR gets the withdrawal of the block n1 had passed on", async () => {
    const { n1, tor, toTor } = await meshAndTor();
    await until("both blocks at the ToR", () => routes(tor).length === 2);
    n1.setPeers([toTor]);
    await until("n2's block withdrawn at the ToR", () => routes(tor).length === 1);
    expect(routes(tor)).toEqual(["10.40.0.0/26 via 127.0.0.41"]);
  });

  it("a ToR's 20,000 routes inside the pools reach the mesh through n1, and their withdrawal too (each route costs n1 work once, not once per UPDATE)", async () => {
    const { n1, n2, tor } = await meshAndTor();
    await until("settled", () => routes(n2).length === 2);
    const many = Array.from({ length: 20_000 }, (_, i) => `10.40.${128 + (i >> 8)}.${i & 255}/32`);
    const t0 = performance.now();
    tor.setExports(["10.40.9.0/26", ...many]);
    await until("20,000 routes at n2", () => n2.rib.bestPaths().length === 20_002, 30_000);
    const t1 = performance.now();
    tor.setExports(["10.40.9.0/26"]);
    await until("withdrawn at n2", () => n2.rib.bestPaths().length === 2, 30_000);
    console.log(`[speaker] 20,000 routes ToR -> n1 -> n2 in ${(t1 - t0).toFixed(0)} ms, withdrawn in ${(performance.now() - t1).toFixed(0)} ms`);
    expect(n1.status().find((p) => p.address === "127.0.0.42")).toMatchObject({ established: 1, prefixesSent: 2 });
  });

  it("the ToR's own routes never go back to it, nor an iBGP-learned route to an iBGP peer", async () => {
    const { n1, n2, tor } = await meshAndTor();
    await until("settled", () => routes(n1).length === 3 && routes(tor).length === 2 && routes(n2).length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(tor.status()[0].prefixesReceived).toBe(2);
    expect(n2.status()[0].prefixesReceived).toBe(2); // n1's block and the ToR's pool route, not n2's own back
  });
});

describe("connection collision (RFC 4271 6.8) with a peer that connects too", () => {
  // A raw peer at 127.0.0.70 (lower BGP ID) both accepts the speaker's connection and
  // opens its own; its OPEN on its own connection arrives first.
  it("the higher-ID speaker holds the peer's connection until its own is answered, then keeps its own: the peer never sees a KEEPALIVE on the losing one", async () => {
    port++;
    const s = speaker("127.0.0.71");
    await s.listen();
    const peerPort = port + 1000;
    const ours = encodeOpen({ as: 64512, holdTime: 90, bgpId: "127.0.0.70", capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 65, as: 64512 }] });
    let accepted: net.Socket | undefined;
    let fromSpeaker: ReturnType<typeof reader> = [];
    const server = net.createServer((sock) => {
      accepted = sock;
      fromSpeaker = reader(sock);
    });
    await new Promise<void>((r) => server.listen(peerPort, "127.0.0.70", r));
    try {
      s.setPeers([{ address: "127.0.0.70", port: peerPort, as: 64512, type: "global", passive: false }]);
      await until("the speaker's connection and OPEN", () => fromSpeaker.some((m) => m.type === 1));
      // The peer's own connection, with its OPEN, before it answers the speaker's.
      const mine = net.connect({ host: "127.0.0.71", port, localAddress: "127.0.0.70" });
      const onMine = reader(mine);
      await new Promise((r) => mine.once("connect", r));
      mine.write(ours);
      await until("the speaker's OPEN on the peer's connection", () => onMine.some((m) => m.type === 1));
      await new Promise((r) => setTimeout(r, 300));
      expect(onMine.some((m) => m.type === 4)).toBe(false); // held: no KEEPALIVE
      // The peer answers the speaker's connection: that one wins, the peer's is closed.
      accepted!.write(ours);
      await until("Cease 7 on the peer's connection", () => onMine.some((m) => m.type === 3));
      expect(onMine.find((m) => m.type === 3)).toMatchObject({ code: 6, subcode: 7 });
      expect(onMine.some((m) => m.type === 4)).toBe(false);
      await until("KEEPALIVE on the speaker's connection", () => fromSpeaker.some((m) => m.type === 4));
      accepted!.write(encodeKeepalive());
      await until("Established", () => s.status()[0].state === "up");
      mine.destroy();
    } finally {
      accepted?.destroy();
      server.close();
    }
  });
});

describe("ROUTE-REFRESH (RFC 2918), whose capability the speaker's OPEN carries", () => {
  it("a peer that asks for the routes again gets every one again; a request for IPv6 is ignored and the session stays", async () => {
    port++;
    const s = speaker("127.0.0.44");
    await s.listen();
    s.setExports(["10.3.0.0/26", "10.3.1.0/26"]);
    s.setPeers([peer("127.0.0.43", true)]);
    const sock = net.connect({ host: "127.0.0.44", port, localAddress: "127.0.0.43" });
    const got = reader(sock);
    await new Promise((r) => sock.once("connect", r));
    try {
      sock.write(encodeOpen({ as: 64512, holdTime: 90, bgpId: "127.0.0.43", capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 2 }, { code: 65, as: 64512 }] }));
      await until("the speaker's OPEN", () => got.some((m) => m.type === 1));
      expect((got.find((m) => m.type === 1) as { capabilities: Array<{ code: number }> }).capabilities.some((c) => c.code === 2)).toBe(true);
      sock.write(encodeKeepalive());
      const announced = () => got.flatMap((m) => (m.type === 2 ? m.nlri.map((p) => `${p.addr >>> 24}.${(p.addr >>> 16) & 255}.${(p.addr >>> 8) & 255}.${p.addr & 255}/${p.len}`) : []));
      await until("both blocks", () => announced().length === 2);
      sock.write(encodeRouteRefresh(2, 1));
      await new Promise((r) => setTimeout(r, 300));
      expect(announced()).toHaveLength(2);
      sock.write(encodeRouteRefresh(1, 1));
      await until("both blocks again", () => announced().length === 4);
      expect(announced().sort()).toEqual(["10.3.0.0/26", "10.3.0.0/26", "10.3.1.0/26", "10.3.1.0/26"]);
      expect(got.some((m) => m.type === 3)).toBe(false);
      expect(s.status()[0].state).toBe("up");
    } finally {
      sock.destroy();
    }
  });
});

describe("loop prevention on eBGP paths", () => {
  it("a route with this node's AS in its path is dropped, unless the peer's numAllowedLocalASNumbers allows that many", async () => {
    const learned = async (allowLocalAs: number | undefined, asns: number[]) => {
      port++;
      const s = speaker("127.0.0.46");
      await s.listen();
      s.setPeers([{ address: "127.0.0.45", port, as: 65001, type: "global", passive: true, ...(allowLocalAs ? { allowLocalAs } : {}) }]);
      const sock = net.connect({ host: "127.0.0.46", port, localAddress: "127.0.0.45" });
      reader(sock);
      await new Promise((r) => sock.once("connect", r));
      try {
        sock.write(encodeOpen({ as: 65001, holdTime: 90, bgpId: "127.0.0.45", capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 65, as: 65001 }] }));
        sock.write(encodeKeepalive());
        await until("Established", () => s.status()[0]?.state === "up");
        sock.write(encodeUpdate({ withdrawn: [], attributes: { origin: 0, asPath: [{ type: 2, asns }], nextHop: "127.0.0.45" }, nlri: [{ addr: 0x0a040400, len: 24 }] }));
        sock.write(encodeUpdate({ withdrawn: [], attributes: { origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: "127.0.0.45" }, nlri: [{ addr: 0x0a040500, len: 24 }] }));
        await until("the plain route", () => routes(s).some((r) => r.startsWith("10.4.5.0/24")));
        return routes(s).some((r) => r.startsWith("10.4.4.0/24"));
      } finally {
        sock.destroy();
      }
    };
    expect(await learned(undefined, [65001, 64512])).toBe(false);
    expect(await learned(1, [65001, 64512])).toBe(true);
    expect(await learned(1, [65001, 64512, 64512])).toBe(false);
  });
});

describe("malformed input on a live session gets the right NOTIFICATION (RFC 4271 section 6)", () => {
  // A raw client at 127.0.0.41 (a configured peer) talks to a speaker at 127.0.0.40.
  async function exchange(messages: Uint8Array[], opts: { holdTime?: number; waitMs?: number } = {}): Promise<Notification | "closed" | "alive"> {
    port++;
    const s = speaker("127.0.0.40", { holdTime: opts.holdTime });
    await s.listen();
    s.setPeers([peer("127.0.0.41", true)]);
    const sock = net.connect({ host: "127.0.0.40", port, localAddress: "127.0.0.41" });
    const got = reader(sock);
    let closed = false;
    sock.on("close", () => (closed = true));
    await new Promise((r) => sock.once("connect", r));
    for (const m of messages) sock.write(m);
    await until("an answer", () => got.some((m) => m.type === 3) || closed, opts.waitMs ?? 10_000).catch(() => {});
    sock.destroy();
    return (got.find((m) => m.type === 3) as Notification | undefined) ?? (closed ? "closed" : "alive");
  }
  const open = (o: Partial<Parameters<typeof encodeOpen>[0]> = {}) => encodeOpen({ as: 64512, holdTime: 90, bgpId: "127.0.0.41", capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 65, as: 64512 }], ...o });
  const withHeader = (mutate: (b: Uint8Array) => void) => {
    const b = Uint8Array.from(encodeKeepalive());
    mutate(b);
    return b;
  };
  const good = { origin: 0, asPath: [], nextHop: "127.0.0.41", localPref: 100 };
  const patch = (m: Uint8Array, at: number, v: number) => {
    const b = Uint8Array.from(m);
    b[at < 0 ? b.length + at : at] = v;
    return b;
  };
  const cases: Array<[string, Uint8Array[], string, { holdTime?: number }?]> = [
    ["a marker that is not all ones", [withHeader((b) => (b[0] = 0))], "1/1"],
    ["a bad message length", [withHeader((b) => (b[17] = 5000 & 255, b[16] = 5000 >> 8))], "1/2"],
    ["a bad message type", [withHeader((b) => (b[18] = 7))], "1/3"],
    ["an unsupported version", [Uint8Array.from(open(), (v, i) => (i === 19 ? 3 : v))], "2/1"],
    ["a bad peer AS", [open({ as: 65001, capabilities: [{ code: 65, as: 65001 }] })], "2/2"],
    ["a bad BGP identifier", [open({ bgpId: "0.0.0.0" })], "2/3"],
    ["an unacceptable hold time of 2", [open({ holdTime: 2 })], "2/6"],
    ["an UPDATE before OPEN (FSM error)", [encodeUpdate({ withdrawn: [], attributes: good, nlri: [{ addr: 0x0a000000, len: 24 }] })], "5/1"],
    ["an UPDATE with a 33-bit NLRI prefix", [open(), encodeKeepalive(), patch(encodeUpdate({ withdrawn: [], attributes: good, nlri: [{ addr: 0x0a000000, len: 24 }] }), -4, 33)], "3/10"],
    ["an unrecognized well-known attribute", [open(), encodeKeepalive(), Uint8Array.from([...encodeUpdate({ withdrawn: [], attributes: good, nlri: [] })].slice(0, 19).concat([0, 0, 0, 4, 0x40, 99, 1, 0]), (v, i) => (i === 17 ? 27 : v))], "3/2"],
    ["silence past the hold time (3 s)", [open({ holdTime: 3 }), encodeKeepalive()], "4/0", { holdTime: 3 }],
  ];
  for (const [what, msgs, want, opts] of cases) {
    it(`${what} -> NOTIFICATION ${want}`, async () => {
      const n = await exchange(msgs, opts);
      expect(typeof n === "object" ? `${n.code}/${n.subcode}` : n).toBe(want);
    }, 15_000);
  }

  it("a malformed ORIGIN is treated as withdraw (RFC 7606): the session stays up", async () => {
    const upd = Uint8Array.from(encodeUpdate({ withdrawn: [], attributes: good, nlri: [{ addr: 0x0a000000, len: 24 }] }));
    upd[19 + 4 + 3] = 9;
    expect(await exchange([open(), encodeKeepalive(), upd], { waitMs: 1500 })).toBe("alive");
  });

  it("refuses a connection from an address that is no peer", async () => {
    port++;
    const s = speaker("127.0.0.50");
    await s.listen();
    s.setPeers([peer("127.0.0.51", true)]);
    const sock = net.connect({ host: "127.0.0.50", port, localAddress: "127.0.0.52" });
    sock.on("error", () => {});
    const closed = await new Promise<boolean>((r) => {
      sock.on("close", () => r(true));
      setTimeout(() => r(false), 3000);
    });
    expect(closed).toBe(true);
  });
});

describe("a peer back from a graceful restart (RFC 4724 4.2)", () => {
  // A raw client at 127.0.0.61 plays a router that restarts; the speaker at 127.0.0.60 waits for it.
  const announce = (prefixes: number[]) => encodeUpdate({ withdrawn: [], attributes: { origin: 0, asPath: [], nextHop: "127.0.0.61", localPref: 100 }, nlri: prefixes.map((p) => ({ addr: 0x0a000000 | (p << 16), len: 24 })) });
  const grOpen = (gr?: { forwarding: boolean }) =>
    encodeOpen({
      as: 64512,
      holdTime: 90,
      bgpId: "127.0.0.61",
      capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 65, as: 64512 }, ...(gr ? [{ code: 64 as const, restarting: true, restartTime: 120, families: [{ afi: 1, safi: 1, forwarding: gr.forwarding }] }] : [])],
    });
  async function connect(messages: Uint8Array[]): Promise<net.Socket> {
    const sock = net.connect({ host: "127.0.0.60", port, localAddress: "127.0.0.61" });
    sock.on("error", () => {});
    sock.on("data", () => {});
    await new Promise((r) => sock.once("connect", r));
    for (const m of messages) sock.write(m);
    return sock;
  }
  const prefixes = (s: Speaker) => s.rib.bestPaths().map((p) => p.prefix).sort();

  async function restartedPeer(second: Uint8Array): Promise<Speaker> {
    port++;
    const s = speaker("127.0.0.60");
    await s.listen();
    s.setPeers([peer("127.0.0.61", true)]);
    const first = await connect([grOpen({ forwarding: false }), encodeKeepalive(), announce([61, 62])]);
    await until("both routes", () => prefixes(s).length === 2);
    first.destroy(); // no NOTIFICATION: a graceful restart
    await until("the session down", () => s.status()[0].state !== "up");
    expect(prefixes(s)).toEqual(["10.61.0.0/24", "10.62.0.0/24"]); // kept as stale
    const again = await connect([second, encodeKeepalive(), announce([61])]);
    await until("up again", () => s.status()[0].state === "up");
    setTimeout(() => again.destroy(), 3000).unref();
    return s;
  }

  it.each([
    ["without graceful restart this time", grOpen()],
    ["with graceful restart but its forwarding state not kept (F bit 0)", grOpen({ forwarding: false })],
  ])("%s: its stale routes go at once, not after its 120 s restart time", async (_what, open2) => {
    const s = await restartedPeer(open2);
    await until("the stale route dropped", () => prefixes(s).join() === "10.61.0.0/24", 2000);
  });

  it("with its forwarding state kept (F bit 1): stale routes stay until its End-of-RIB", async () => {
    const s = await restartedPeer(grOpen({ forwarding: true }));
    await until("its announcement", () => s.rib.bestPaths().some((p) => p.prefix === "10.61.0.0/24" && !p.stale));
    await new Promise((r) => setTimeout(r, 300));
    expect(prefixes(s)).toEqual(["10.61.0.0/24", "10.62.0.0/24"]);
  });
});
