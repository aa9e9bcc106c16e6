// weft lab tour: replays the seed's walkthrough step by step on a lab, printing at
// each step what changed in worker-1's route table, which pings work, and the headers
// of a captured packet, so a reader sees the encapsulation (or its absence).
import { spawn } from "node:child_process";
import type { Lab } from "./lab.js";
import { poolManifest } from "./lab.js";
import type { LabMode } from "./topology.js";

export interface TourOutcome {
  step: string;
  expected: { p1p2: boolean; p1p3: boolean };
  reached: { p1p2: boolean; p1p3: boolean };
  routesAdded: string[];
  routesRemoved: string[];
  captured: string;
}

interface Step {
  title: string;
  explain: string;
  run: (lab: Lab) => Promise<void>;
  expected: { p1p2: boolean; p1p3: boolean };
}

const pool = (mode: LabMode) => async (lab: Lab) => void (await lab.apply(poolManifest(mode)));

const STEPS: Step[] = [
  { title: "IP-in-IP (the default pool: ipipMode Always)", explain: "every remote block goes through weft0; packets carry an outer header with the hosts' addresses", run: pool("ipip"), expected: { p1p2: true, p1p3: true } },
  {
    title: "Direct (ipipMode Never), cloud source/destination checks on",
    explain: "remote blocks via eth0, worker-3's via the gateway; the network drops frames whose addresses are not the hosts'",
    run: async (lab) => {
      await lab.setSrcDstCheck(true);
      await pool("direct")(lab);
    },
    expected: { p1p2: false, p1p3: false },
  },
  { title: "Direct, source/destination checks disabled", explain: "pod-1 -> pod-2 works; pod-1 -> pod-3 still fails: the gateway has no route for pod addresses", run: (lab) => lab.setSrcDstCheck(false), expected: { p1p2: true, p1p3: false } },
  { title: "CrossSubnet (ipipMode CrossSubnet)", explain: "direct inside the subnet, IP-in-IP across it: weft0 only toward worker-3", run: pool("crosssubnet"), expected: { p1p2: true, p1p3: true } },
  {
    title: "VXLAN (vxlanMode Always), BGP off",
    explain: "nodes restarted with the vxlan backend: routes come from the datastore, packets travel in UDP 4789, VNI 4096",
    run: async (lab) => {
      await pool("vxlan")(lab);
      await lab.switchBackend("vxlan");
    },
    expected: { p1p2: true, p1p3: true },
  },
];

async function weftRoutes(lab: Lab): Promise<string[]> {
  return (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).trim().split("\n").map((l) => l.trim()).filter(Boolean);
}

/** One packet pod-1 -> target seen on the gateway's subnet-A bridge, as a header line. */
async function captureOne(lab: Lab, target: string): Promise<string> {
  const fields = ["ip.src", "ip.dst", "ip.proto", "udp.dstport", "vxlan.vni", "icmp.type"];
  const args = ["netns", "exec", lab.gw, "tshark", "-n", "-l", "-i", "brA", "-c", "1", "-a", "duration:60", "-f", "ip and not tcp port 179 and not port 2379", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"];
  for (const f of fields) args.push("-e", f);
  const p = spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let closed = false;
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (err += d));
  const done = new Promise<void>((r) => p.on("close", () => ((closed = true), r())));
  // Only IPv4: a fresh veth's IPv6 chatter (router solicitations, MLD) would otherwise be
  // the one packet captured. tshark can take many seconds to start on a loaded machine,
  // and says so on stderr: wait for that (up to 40 s), then ping once a second until it
  // has seen a packet.
  for (let i = 0; i < 160 && !closed && !/Capture started/.test(err); i++) await new Promise((r) => setTimeout(r, 250));
  for (let i = 0; i < 12 && !closed; i++) {
    await lab.ping("pod-1", target, { timeoutS: 1 });
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!closed) p.kill();
  await done;
  const [src = "", dst = "", proto = "", port = "", vni = ""] = out.trim().split("\n")[0]?.split("|") ?? [];
  if (!src) return "(nothing on subnet A's wire)";
  const s = src.split(",");
  const d = dst.split(",");
  const pr = proto.split(",");
  if (vni) return `outer ${s[0]} > ${d[0]} UDP ${port} VXLAN VNI ${vni} | inner ${s[1]} > ${d[1]} ICMP`;
  if (pr[0] === "4") return `outer ${s[0]} > ${d[0]} IP proto 4 (IPIP) | inner ${s[1]} > ${d[1]} ICMP`;
  return `${s[0]} > ${d[0]} ICMP (no encapsulation)`;
}

export async function runTour(lab: Lab, print: (line: string) => void): Promise<TourOutcome[]> {
  const outcomes: TourOutcome[] = [];
  const p2 = lab.podAddress("pod-2");
  const p3 = lab.podAddress("pod-3");
  for (const [i, step] of STEPS.entries()) {
    const before = await weftRoutes(lab);
    await step.run(lab);
    await new Promise((r) => setTimeout(r, 2500)); // every node follows within about a second
    const after = await weftRoutes(lab);
    const reached = { p1p2: await lab.ping("pod-1", p2, { timeoutS: 2 }), p1p3: await lab.ping("pod-1", p3, { timeoutS: 2 }) };
    const captured = await captureOne(lab, reached.p1p2 || !reached.p1p3 ? p2 : p3);
    const o: TourOutcome = { step: step.title, expected: step.expected, reached, routesAdded: after.filter((r) => !before.includes(r)), routesRemoved: before.filter((r) => !after.includes(r)), captured };
    outcomes.push(o);
    const mark = (ok: boolean, want: boolean) => `${ok ? "reaches" : "times out"}${ok === want ? "" : "  (UNEXPECTED)"}`;
    print(`\nStep ${i + 1}: ${step.title}\n  ${step.explain}`);
    if (o.routesRemoved.length || o.routesAdded.length) {
      print("  worker-1's routes:");
      for (const r of o.routesRemoved) print(`    - ${r}`);
      for (const r of o.routesAdded) print(`    + ${r}`);
    } else print("  worker-1's routes: unchanged");
    print(`  pod-1 -> pod-2 (${p2}, same subnet):  ${mark(reached.p1p2, step.expected.p1p2)}`);
    print(`  pod-1 -> pod-3 (${p3}, across the gateway):  ${mark(reached.p1p3, step.expected.p1p3)}`);
    print(`  on the wire: ${captured}`);
  }
  return outcomes;
}
