// A live session fed generated streams: UPDATEs announcing and withdrawing random
// prefixes, KEEPALIVEs, written in chunks cut anywhere (a message split across TCP
// segments, several in one), optionally ending in random bytes. The speaker's RIB must
// equal what the stream said; garbage may end the session (then the peer's routes go)
// but never the process, and the next connection from that peer works.
import net from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { Speaker } from "./speaker.js";
import { encodeKeepalive, encodeOpen, encodeUpdate, message } from "./wire.js";

const log = pino({ level: process.env.WEFT_TEST_LOG ?? "silent" });
let port = 24000 + Math.floor(Math.random() * 2000);
const speakers: Speaker[] = [];
afterEach(async () => {
  await Promise.all(speakers.splice(0).map((s) => s.stop(false)));
});

const ME = "127.0.0.80";
const PEER = "127.0.0.81";
const open = () => encodeOpen({ as: 64512, holdTime: 90, bgpId: PEER, capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 65, as: 64512 }] });
const attrs = { origin: 0, asPath: [], nextHop: PEER, localPref: 100 };
// Prefixes 10.<i>.0.0/16, i < 24: few enough that announcements and withdrawals meet.
const prefix = (i: number) => ({ addr: (10 << 24) | (i << 16), len: 16 });
const show = (i: number) => `10.${i}.0.0/16`;

type Step = { t: "announce" | "withdraw"; ps: number[] } | { t: "keepalive" };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constantFrom("announce" as const, "withdraw" as const), ps: fc.uniqueArray(fc.nat(23), { minLength: 0, maxLength: 6 }) }),
  fc.constant<Step>({ t: "keepalive" }),
);
const encode = (s: Step) => (s.t === "keepalive" ? encodeKeepalive() : s.t === "announce" ? encodeUpdate({ withdrawn: [], attributes: attrs, nlri: s.ps.map(prefix) }) : encodeUpdate({ withdrawn: s.ps.map(prefix), attributes: {}, nlri: [] }));

/** Trailing garbage: a few random bytes (a message cut short), random bytes past a header's
 * length, or a well-framed message of any type whose body is random. */
const garbage: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 18 }),
  fc.uint8Array({ minLength: 19, maxLength: 80, size: "medium" }),
  fc.tuple(fc.integer({ min: 1, max: 6 }), fc.uint8Array({ maxLength: 120, size: "medium" })).map(([type, body]) => message(type, body)),
);

const until = async (f: () => boolean, ms: number) => {
  const t = Date.now() + ms;
  while (!f() && Date.now() < t) await new Promise((r) => setTimeout(r, 10));
  return f();
};

/** Writes bytes in the given cuts, each after a short pause so they leave as separate segments. */
async function dribble(sock: net.Socket, bytes: Uint8Array, cuts: number[]): Promise<void> {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const c of [...at, bytes.length]) {
    if (c > from) sock.write(bytes.subarray(from, c));
    from = Math.max(from, c);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function connect(): Promise<{ sock: net.Socket; closed: () => boolean }> {
  const sock = net.connect({ host: ME, port, localAddress: PEER });
  sock.setNoDelay(true);
  let closed = false;
  sock.on("close", () => (closed = true));
  sock.on("error", () => {});
  sock.on("data", () => {});
  return new Promise((r) => sock.once("connect", () => r({ sock, closed: () => closed })));
}

describe("a live session fed generated streams", () => {
  it("the RIB is what the stream said, whatever the segmenting; trailing garbage never takes the process down, and the peer connects again (30 streams)", async () => {
    let garbageClosed = 0;
    let garbageAlive = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.array(fc.nat(), { maxLength: 30 }), fc.option(garbage, { freq: 4 }), async (steps, cuts, garbage) => {
        port++;
        const s = new Speaker({ as: 64512, routerId: ME, holdTime: 90, restartTime: 120, restarting: false, localAddress: ME, listenPort: port, listenAddress: ME }, log);
        speakers.push(s);
        await s.listen();
        s.setPeers([{ address: PEER, port, as: 64512, type: "node-to-node mesh", passive: true }]);
        const { sock, closed } = await connect();
        const model = new Set<number>();
        for (const st of steps) if (st.t !== "keepalive") for (const p of st.ps) st.t === "announce" ? model.add(p) : model.delete(p);
        const stream = Buffer.concat([open(), encodeKeepalive(), ...steps.map(encode)].map((m) => Buffer.from(m)));
        await dribble(sock, stream, cuts);
        const want = [...model].sort((a, b) => a - b).map(show);
        const rib = () => s.rib.bestPaths().map((p) => p.prefix).sort((a, b) => Number(a.split(".")[1]) - Number(b.split(".")[1]));
        expect(await until(() => JSON.stringify(rib()) === JSON.stringify(want), 5000), `RIB ${JSON.stringify(rib())}, stream said ${JSON.stringify(want)}`).toBe(true);
        if (garbage) {
          sock.write(garbage);
          // Garbage may be a partial message the speaker keeps waiting for, or one it answers with a NOTIFICATION.
          if (await until(closed, 1500)) {
            garbageClosed++;
            expect(await until(() => s.rib.bestPaths().length === 0, 3000), "routes of a closed session (no graceful restart) are gone").toBe(true);
          } else garbageAlive++;
        }
        sock.destroy();
        // The same peer again: a fresh session works and carries a route.
        await until(() => s.status()[0]?.state !== "up", 3000);
        const again = await connect();
        again.sock.write(Buffer.concat([open(), encodeKeepalive(), encodeUpdate({ withdrawn: [], attributes: attrs, nlri: [prefix(99 & 0xff)] })].map((m) => Buffer.from(m))));
        expect(await until(() => s.rib.bestPaths().some((p) => p.prefix === show(99)), 5000), "the peer's next session carries its route").toBe(true);
        again.sock.destroy();
        await s.stop(false);
      }),
      { numRuns: 30 },
    );
    console.log(`[bgp-fuzz] 30 streams: trailing garbage closed the session ${garbageClosed} times (routes withdrawn) and was waited out ${garbageAlive} times`);
  }, 120_000);
});
