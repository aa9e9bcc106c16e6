// An external router (BIRD on the gateway) sends worker-1 a table of 100,000 routes,
// as a ToR or an edge router with a large table does, then withdraws it, while pod-1
// pings pod-2 through worker-1 every 10 ms. Before: worker-1 asked the kernel for the
// gateway of every such route at every sync (one `ip route get` per route), resent
// its exports to every peer after every UPDATE, queued a sync every 20 ms while a
// slow one ran, and logged every route in one line: after 180 s 2,010 of the routes
// were in, pod-1's pings were answered after up to 22 s and 12% were lost.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { background, useLab } from "./helpers.js";
import { Bird, gatewayBirdPeer, until } from "./daemons.js";

const ROUTES = 100_000;
// 20.0.0.0/24 .. 21.134.159.0/24: outside the pools and the lab's networks.
const table = Array.from({ length: ROUTES }, (_, i) => ` route ${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24 blackhole;`).join("\n");

/** CPU seconds a process has used (user + system), from /proc; with children: what the commands it ran and waited for used. */
function cpuSeconds(pid: number, children = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (children ? Number(fields[13]) + Number(fields[14]) : Number(fields[11]) + Number(fields[12])) / 100;
}

/** Pings pod-1 -> pod-2 output: how many were sent, answered, and the slowest answer (ms). */
function pings(out: string): { sent: number; answered: number; slowest: number } {
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { sent: Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0), answered: rtts.length, slowest: Math.max(...rtts) };
}

describe("a BGP peer's table of 100,000 routes", () => {
  let bird: Bird;
  const lab = useLab("tfull", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      bird = new Bird(l, "gw");
      await bird.start(`router id 10.30.0.1;
protocol device {}
protocol static big { ipv4; disabled;
${table}
}
protocol static flap { ipv4; route 30.0.0.0/24 blackhole; }
protocol bgp w1 { local as 65001; neighbor 10.30.0.11 as 64512; direct; ipv4 { import all; export all; }; }
`);
      await l.apply(gatewayBirdPeer());
    },
  });

  const count = async () => Number((await lab.exec("worker-1", ["sh", "-c", "ip -4 route show proto 87 | grep -c '^2[01]\\.' || true"])).trim());

  it("goes into worker-1's kernel and out again in seconds while pod-1 keeps reaching pod-2 through it; the node goes quiet after, its mesh stays up and its log names 50 routes and counts the rest", async () => {
    await until("BIRD's w1 Established", async () => /Established/.test(await bird.birdc(["show", "protocols", "w1"])), 60_000);
        const pid = (await lab.nodeStatus("worker-1")).pid as number;
    const ping = background(lab, "pod-1", ["ping", "-i", "0.01", "-c", "1500", "-W", "2", "-D", lab.podAddress("pod-2")]);
    await new Promise((r) => setTimeout(r, 500));

    const t0 = Date.now();
    await bird.birdc(["enable", "big"]);
    await until(`${ROUTES} routes in worker-1's kernel`, async () => (await count()) === ROUTES, 60_000);
    const loaded = Date.now() - t0;
    // Nothing left to do once they are in: a queue of syncs kept it busy for minutes.
    const cpu0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 5000));
    const busy = cpuSeconds(pid) - cpu0;

    // `weft node routes` with the table in, into a pipe read a second late: all of it
    // arrives (64 KB did), and the node writes it a slice at a time, serving pods between.
    const ping2 = background(lab, "pod-1", ["ping", "-i", "0.01", "-c", "400", "-W", "2", lab.podAddress("pod-2")]);
    await new Promise((r) => setTimeout(r, 300));
    const tr = Date.now();
    const listing = await lab.exec("worker-1", ["sh", "-c", `'${process.execPath}' '${lab.cli()}' node routes --control '${lab.controlSocket("worker-1")}' | (sleep 1; cat)`], { timeoutMs: 60_000 });
    const listed = Date.now() - tr;
    ping2.child.kill("SIGINT");
    const during = pings(await ping2.done);
    const bgpRoutes = (JSON.parse(listing) as { bgp: unknown[] }).bgp.length;
    console.log(`[tfull] weft node routes with the table in: ${(listing.length / 1e6).toFixed(1)} MB, ${bgpRoutes} BGP routes, through a late pipe in ${listed} ms; pod-1 -> pod-2 pings meanwhile: ${during.answered} of ${during.sent} answered, slowest ${during.slowest.toFixed(0)} ms`);
    expect(bgpRoutes).toBeGreaterThanOrEqual(ROUTES);

    const t1 = Date.now();
    await bird.birdc(["disable", "big"]);
    await until("the routes withdrawn from worker-1's kernel", async () => (await count()) === 0, 60_000);
    const withdrawn = Date.now() - t1;
    ping.child.kill("SIGINT");
    const out = await ping.done;

    const { sent, answered, slowest } = pings(out);
    const log = readFileSync(`${lab.dir}/worker-1.log`, "utf8").split("\n");
    const longest = Math.max(...log.map((l) => l.length));
    console.log(
      `[tfull] ${ROUTES} routes in worker-1's kernel after ${loaded} ms, withdrawn after ${withdrawn} ms; worker-1 used ${busy.toFixed(2)} CPU s in the 5 s after the load; ` +
        `pod-1 -> pod-2 pings meanwhile: ${answered} of ${sent} answered, slowest ${slowest.toFixed(0)} ms; longest log line ${longest} bytes`,
    );
    expect(loaded).toBeLessThan(60_000);
    expect(withdrawn).toBeLessThan(60_000);
    expect(busy).toBeLessThan(2.5);
    expect(sent - answered).toBeLessThanOrEqual(Math.ceil(sent * 0.02));
    expect(slowest).toBeLessThan(2000);
    expect(longest).toBeLessThan(20_000);
    expect(log.some((l) => /"routes updated"/.test(l) && /\.\.\. and \d+ more/.test(l))).toBe(true);
    const status = await lab.exec("worker-1", [process.execPath, lab.cli(), "node", "status", "--control", lab.controlSocket("worker-1")]);
    expect(status.split("\n").filter((l) => /node-to-node mesh \| up /.test(l))).toHaveLength(3);
    expect(await bird.birdc(["show", "protocols", "w1"])).toMatch(/Established/);
  }, 240_000);

  it("one route withdrawn and announced again beside the 100,000 reaches worker-1's kernel in a fraction of a second each time (1.5-2.4 s when every sync listed the kernel's routes); flapping 2.5 times a second, worker-1 syncs a third of the time at most (it was 80% of a CPU), pods keep reaching, and the route's last state is the one installed", async () => {
    await bird.birdc(["enable", "big"]);
    await until(`${ROUTES} routes in worker-1's kernel`, async () => (await count()) === ROUTES, 60_000);
    const flapRoute = async () => (await lab.exec("worker-1", ["ip", "route", "show", "30.0.0.0/24"])).trim();
    // The load's last syncs were long, and the next waits twice as long (at most 2 s).
    await new Promise((r) => setTimeout(r, 3000));
    const took: number[] = [];
    for (const [act, there] of [["disable", false], ["enable", true], ["disable", false], ["enable", true], ["disable", false], ["enable", true]] as const) {
      await new Promise((r) => setTimeout(r, 1500)); // apart, as changes seldom come
      const t = Date.now();
      await bird.birdc([act, "flap"]);
      await until(`30.0.0.0/24 ${there ? "back in" : "gone from"} worker-1's kernel`, async () => (await flapRoute() !== "") === there, 10_000, 5);
      took.push(Date.now() - t);
    }
    console.log(`[tfull] one route withdrawn or announced again beside ${ROUTES}: in worker-1's kernel after ${took.join(", ")} ms`);
    // Most of them: one may meet the 30 s check's sync under way (2.2 s once in CI).
    expect([...took].sort((a, b) => a - b)[3]).toBeLessThan(1500);

    const pid = (await lab.nodeStatus("worker-1")).pid as number;
    const ping = background(lab, "pod-1", ["ping", "-i", "0.01", "-c", "3000", "-W", "2", lab.podAddress("pod-2")]);
    const cpu0 = cpuSeconds(pid);
    const children0 = cpuSeconds(pid, true);
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      await bird.birdc(["disable", "flap"]);
      await new Promise((r) => setTimeout(r, 200));
      await bird.birdc(["enable", "flap"]);
      await new Promise((r) => setTimeout(r, 200));
    }
    const seconds = (Date.now() - t0) / 1000;
    const share = (cpuSeconds(pid) - cpu0) / seconds;
    const childShare = (cpuSeconds(pid, true) - children0) / seconds;
    ping.child.kill("SIGINT");
    const { sent, answered, slowest } = pings(await ping.done);
    const flap = await until("30.0.0.0/24 in worker-1's kernel", flapRoute, 10_000);
    console.log(`[tfull] 20 flaps of one route beside ${ROUTES}: worker-1 busy ${(share * 100).toFixed(0)}% of the time, the commands it ran ${(childShare * 100).toFixed(0)}% more; pings ${answered} of ${sent} answered, slowest ${slowest.toFixed(0)} ms; at the end: ${flap}`);
    expect(share + childShare).toBeLessThan(0.6);
    expect(sent - answered).toBeLessThanOrEqual(Math.ceil(sent * 0.02));
    expect(flap).toMatch(/^30\.0\.0\.0\/24 via 10\.30\.0\.1 dev eth0 proto 87 metric 32/);
    await bird.birdc(["disable", "big"]);
    await until("the routes withdrawn from worker-1's kernel", async () => (await count()) === 0, 60_000);
  }, 240_000);
});
