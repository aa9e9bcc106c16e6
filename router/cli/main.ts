#!/usr/bin/env node
// The weft command.
import { existsSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { ConfigError, loadStaticConfig } from "../node/config.js";
import { resetNode, runStaticNode } from "../node/run.js";
import { controlGet, resolveSocket } from "../control/client.js";
import { logger } from "./log.js";
import { datastoreURL, ManifestError, readManifest, registerClusterCommands } from "./cluster.js";
import { compactionPeriod, interfaceName, markMaskBit, wholeNumber } from "./args.js";
import { DATASTORE_HELP, DatastoreURLError } from "../store/store.js";
import { ExportFileError } from "../store/migrate.js";
import { ValidationError } from "../resources/validate.js";
import { parseManifests } from "../resources/manifest.js";
import { BENCH_PATHS } from "../bench/paths.js";
import { helpSection, switchesHelp } from "../node/env.js";
import { METHODS_HELP } from "../node/autodetect.js";
import { POOL_VARIABLES } from "../node/default-pool.js";
import { HTTP_VARIABLES, httpEndpoints } from "../control/http.js";
import { weftVersion } from "../version.js";

/** Exit code for bad input (config, arguments): nothing was touched. */
export const EXIT_USAGE = 2;

/** EPERM or EACCES, from Node (code) or the addon (errno). */
function permissionDenied(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown };
  return e?.code === "EPERM" || e?.code === "EACCES" || e?.errno === 1 || e?.errno === 13;
}

/**
 * Resolves once what the command wrote to stdout and stderr is out. A pipe takes 64 KB
 * at once and Node queues the rest, which process.exit() dropped: `weft node routes |
 * jq` beside a peer's 100,000 routes got 64 KB of 19 MB, and so would any output that
 * long (an export, a listing) piped into another program.
 */
function outputWritten(): Promise<unknown> {
  return Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => (s.writableLength === 0 ? resolve() : s.write("", () => resolve())))));
}

function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  const hint = permissionDenied(err) && process.getuid?.() !== 0 ? " (weft needs root here: TUN, routes, namespaces and /var/lib/weft)" : "";
  process.stderr.write(`weft: ${msg}${hint}\n`);
  const usage = err instanceof ConfigError || err instanceof ManifestError || err instanceof ValidationError || err instanceof DatastoreURLError || err instanceof ExportFileError;
  process.exit(usage ? EXIT_USAGE : 1);
}

const program = new Command("weft")
  .description("Userspace overlay router: Calico's routing modes (IPIP, VXLAN, direct) over a TUN device with a WebAssembly fast path")
  .version(weftVersion())
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s) });

/** --control, also from WEFT_CONTROL (which weft lab exec sets on a lab host). */
const controlOption = (what = "control socket path (default: the only one in /run/weft)") => new Option("--control <path>", what).env("WEFT_CONTROL");

const node = program.command("node").description("run and inspect the node on this host");

node
  .command("run")
  .description("run this host's node: from the datastore (default), or with --config from a static-routes file")
  .option("--datastore <url>", DATASTORE_HELP)
  .addOption(new Option("--name <name>", "node name: lowercase letters, digits, - and . (default: the hostname in lowercase)").env("NODENAME"))
  .addOption(new Option("--ip <address>", "underlay address with its prefix (10.30.0.11/24; a bare address takes its interface's prefix), or autodetect (the default)").env("IP"))
  .addOption(new Option("--ip-autodetection-method <method>", `how to autodetect the address: ${METHODS_HELP} (default: the address of the default route's interface)`).env("IP_AUTODETECTION_METHOD"))
  .option("--interface <dev>", "underlay interface: the address is its first (default: the one holding the address)")
  .addOption(new Option("--ipip-mtu <bytes>", "weft0's MTU with IPIP pools (default: the uplink's minus 20)").env("FELIX_IPINIPMTU").argParser((t) => wholeNumber("--ipip-mtu (or FELIX_IPINIPMTU)", t, 576, 65535)))
  .addOption(new Option("--vxlan-mtu <bytes>", "weft0's MTU with VXLAN pools (default: the uplink's minus 50); with both, the smaller wins").env("FELIX_VXLANMTU").argParser((t) => wholeNumber("--vxlan-mtu (or FELIX_VXLANMTU)", t, 576, 65535)))
  .addOption(new Option("--iptables-mark-mask <mask>", "packet mark bits weft may use (hex or decimal): the lowest marks IPIP and VXLAN from the cluster's nodes for WEFT-INPUT (default 0xffff0000, Calico's; the bit 0x10000)").env("FELIX_IPTABLESMARKMASK").argParser((t) => markMaskBit("--iptables-mark-mask (or FELIX_IPTABLESMARKMASK)", t)))
  .addOption(new Option("--as <number>", "this node's AS number, kept in its Node (default: the Node's, else the cluster's, 64512)").env("AS").argParser((t) => wholeNumber("--as (or AS)", t, 1, 4294967295)))
  .addOption(new Option("--backend <backend>", "bgp (or Calico's bird): share routes over BGP (the default); vxlan: BGP off, routes from the datastore").choices(["bgp", "bird", "vxlan"]).default("bgp").env("CALICO_NETWORKING_BACKEND"))
  .option("--config <file>", "static routes instead of a datastore (YAML: name, address, encapsulation, routes); SIGHUP reads its routes, encapsulation and mtu again")
  .addOption(controlOption("control socket path (default /run/weft/<name>.sock)"))
  .option("--metrics-address <[host:]port>", "also serve Prometheus metrics over HTTP at http://ADDRESS/metrics (default: off; weft node metrics reads them from the control socket)")
  .option("--health-address <[host:]port>", "also serve /liveness and /readiness over HTTP (200, or 503 with the reason), for HTTP probes (default: off)")
  .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error"]).default("info").env("WEFT_LOG_LEVEL"))
  .addOption(new Option("--compaction-period <duration>", "etcd: compact its history this often, keeping that much of it (default 10m; 0 = never), as Calico's kube-controllers does, without which etcd fills its space quota and refuses every write").env("COMPACTION_PERIOD").argParser((t) => compactionPeriod(t)))
  .addHelpText("after", `${switchesHelp()}\n${helpSection("The pool a node creates when the datastore has none, from Calico's variables\n(a bad value stops the node, exit 2):", POOL_VARIABLES)}\n${helpSection("Metrics and health over HTTP from Calico's variables, when the options are not\ngiven (a bad value stops the node, exit 2):", HTTP_VARIABLES)}`)
  .action(async function (this: Command, opts: { config?: string; datastore?: string; name?: string; ip?: string; ipAutodetectionMethod?: string; interface?: string; as?: number; ipipMtu?: number; vxlanMtu?: number; iptablesMarkMask?: number; control?: string; metricsAddress?: string; healthAddress?: string; logLevel: string; backend: "bgp" | "bird" | "vxlan"; compactionPeriod?: number }) {
    const log = logger(opts.logLevel);
    const http = httpEndpoints(opts, process.env);
    // An error nothing expected: one log line saying so, then exit 1 for the supervisor.
    // weft0 and the routes stay, and the next start adopts them (graceful restart).
    const fatal = (err: unknown) => {
      log.fatal({ err }, "unexpected error: the node stops; weft0 and its routes stay for the next start");
      process.exit(1);
    };
    process.on("uncaughtException", fatal).on("unhandledRejection", fatal);
    // Calico's NODENAME, IP and IP_AUTODETECTION_METHOD work as the options do (the file rules in static mode).
    const fromEnv = (o: string) => this.getOptionValueSource(o) === "env";
    const nameFromEnv = fromEnv("name");
    if (opts.config) {
      if (opts.datastore || (opts.name && !nameFromEnv) || (opts.ip && !fromEnv("ip")) || (opts.ipAutodetectionMethod && !fromEnv("ipAutodetectionMethod")) || (opts.as !== undefined && !fromEnv("as")) || ((opts.ipipMtu !== undefined && !fromEnv("ipipMtu")) || (opts.vxlanMtu !== undefined && !fromEnv("vxlanMtu"))) || (opts.iptablesMarkMask !== undefined && !fromEnv("iptablesMarkMask"))) {
        throw new ConfigError("--config runs from static routes: leave out --datastore, --name, --ip, --ip-autodetection-method, --as, the MTU options and --iptables-mark-mask (the file has what it needs: its mtu; a static node leaves the firewall alone)");
      }
      await runStaticNode(loadStaticConfig(opts.config), opts.config, log, { control: opts.control, http });
    } else {
      const { runClusterNode } = await import("../node/cluster-node.js");
      await runClusterNode(
        {
          datastore: datastoreURL(opts),
          backend: opts.backend === "vxlan" ? "vxlan" : "bgp",
          name: opts.name,
          nameFrom: nameFromEnv ? "NODENAME" : "--name",
          ip: opts.ip,
          ipFrom: fromEnv("ip") ? "IP" : "--ip",
          autodetectionMethod: opts.ipAutodetectionMethod,
          methodFrom: fromEnv("ipAutodetectionMethod") ? "IP_AUTODETECTION_METHOD" : "--ip-autodetection-method",
          interface: opts.interface,
          as: opts.as,
          ipipMTU: opts.ipipMtu,
          vxlanMTU: opts.vxlanMtu,
          tunnelMark: opts.iptablesMarkMask,
          compactionPeriodS: opts.compactionPeriod,
          control: opts.control,
          http,
        },
        log,
      );
    }
    process.exit(0);
  });

node
  .command("reset")
  .description("remove everything weft installed: routes with weft's protocol, the tunnel device, the natOutgoing table and the iptables chains (WEFT-FORWARD, WEFT-INPUT); run it only when the node has stopped")
  .option("--config <file>", "take the tunnel device name from this config")
  .option("--tunnel <name>", "tunnel device name", "weft0")
  .action(async (opts: { config?: string; tunnel: string }) => {
    const dev = opts.config ? loadStaticConfig(opts.config).tunnelDevice : interfaceName("--tunnel", opts.tunnel);
    await resetNode(dev, logger());
  });

node
  .command("checksystem")
  .description("check this host has what weft node run needs (root, TUN and its offloads, UDP GSO/GRO, a raw IPIP socket, UDP 4789 and the BGP port free, the datastore, ip/nft/iptables, IP forwarding), as calicoctl node checksystem does; exit 1 if a check fails")
  .option("--json", "the checks as JSON")
  .option("--datastore <url>", `the datastore weft node run will use: checked, and its BGPConfiguration's listenPort is the BGP port checked: ${DATASTORE_HELP}`)
  .action(async (opts: { json?: boolean; datastore?: string }) => {
    const { checkSystem, checksText } = await import("../node/checksystem.js");
    const checks = await checkSystem("weft0", datastoreURL(opts));
    process.stdout.write(opts.json ? `${JSON.stringify(checks, null, 2)}\n` : checksText(checks));
    if (checks.some((c) => c.result === "FAIL")) process.exitCode = 1;
  });

node
  .command("diags")
  .description("collect what is needed to look into a problem, as calicoctl node diags does: the node's status, routes and metrics, checksystem, and this host's addresses, links, routes, rules, neighbours, sockets, iptables and nftables rules, in one tar.gz (it holds this host's addresses: mind where you send it)")
  .option("--output <dir>", "where to write the archive", ".")
  .option("--node <name>", "which node, when several run on this machine")
  .addOption(controlOption())
  .action(async (opts: { output: string; node?: string; control?: string }) => {
    const { collectDiags } = await import("../node/diags.js");
    let socket: string | undefined;
    try {
      socket = resolveSocket(opts);
    } catch (err) {
      process.stderr.write(`weft: note: ${(err as Error).message}; collecting the host's side only\n`);
    }
    const r = await collectDiags(opts.output, socket);
    process.stdout.write(`Diags saved to ${r.file} (${r.files.length} files${r.nodeAnswered ? "" : "; no weft node answered here"})\nAdd the node's log: journalctl -u weft-node, or wherever its output goes.\n`);
  });

node
  .command("status")
  .description("BGP peers as calicoctl node status prints them (--json: everything the node knows about itself)")
  .option("--node <name>", "which node, when several run on this machine")
  .addOption(controlOption())
  .option("--json", "the node's full status as JSON (settings, offloads, counters, peers)")
  .action(async (opts: { node?: string; control?: string; json?: boolean }) => {
    const sock = resolveSocket(opts);
    if (opts.json) {
      const status = JSON.parse(await controlGet(sock, "/status"));
      const bgp = JSON.parse(await controlGet(sock, "/bgp"));
      process.stdout.write(`${JSON.stringify({ ...status, bgp }, null, 2)}\n`);
      return;
    }
    const { nodeStatusText } = await import("../control/format.js");
    const status = JSON.parse(await controlGet(sock, "/status")) as Parameters<typeof nodeStatusText>[1];
    process.stdout.write(nodeStatusText(JSON.parse(await controlGet(sock, "/bgp")), status));
  });

program
  .command("version")
  .description("this command's version and, when a weft node runs here, the node's (as calicoctl version prints client and cluster versions): after an upgrade, a node still running the old version says so")
  .option("--node <name>", "which node, when several run on this machine")
  .addOption(controlOption())
  .action(async (opts: { node?: string; control?: string }) => {
    const mine = weftVersion();
    process.stdout.write(`Client Version:  ${mine}\n`);
    let running: { version?: string; name?: string; pid?: number; started?: string };
    try {
      running = JSON.parse(await controlGet(resolveSocket(opts), "/status"));
    } catch (err) {
      process.stdout.write(`Node Version:    none: ${(err as Error).message}\n`);
      return;
    }
    process.stdout.write(`Node Version:    ${running.version ?? "not reported (a node from before weft said it)"} (node ${running.name}, pid ${running.pid ?? "?"}, started ${running.started})\n`);
    if (running.version !== mine) process.stdout.write(`The running node is not this version: restart it to run ${mine} (systemctl restart weft-node, where it runs as a service).\n`);
  });

node
  .command("health")
  .description("liveness (--live) or readiness (--ready, Calico's BGP rule); exit 0 when healthy")
  .option("--live", "the process and its loops answer")
  .option("--ready", "BGP peers Established (all within 30 s of start, then at least one)")
  .option("--node <name>", "which node, when several run on this machine")
  .addOption(controlOption())
  .action(async (opts: { live?: boolean; ready?: boolean; node?: string; control?: string }) => {
    if (!opts.live && !opts.ready) throw new ConfigError("health needs --live or --ready");
    const sock = resolveSocket(opts);
    if (opts.live) await controlGet(sock, "/health/live");
    if (opts.ready) {
      const r = JSON.parse(await controlGet(sock, "/health/ready", true)) as { ready: boolean; reason: string };
      if (!r.ready) {
        process.stderr.write(`weft is not ready: ${r.reason}\n`);
        process.exitCode = 1;
        return;
      }
    }
    process.stdout.write(`${opts.ready ? "ready" : "live"}\n`);
  });

for (const [name, url, what] of [
  ["routes", "/routes", "the node's routes (JSON): its fast path's, with their source; a BGP node's also as BGP has them: best paths (bgp), kept out by a BGPFilter (bgpFiltered), sent to each peer (bgpExported)"],
  ["metrics", "/metrics", "Prometheus metrics"],
] as const) {
  node
    .command(name)
    .description(`print ${what}`)
    .option("--node <name>", "which node, when several run on this machine")
    .addOption(controlOption())
    .action(async (opts: { node?: string; control?: string }) => {
      const body = await controlGet(resolveSocket(opts), url);
      process.stdout.write(url === "/metrics" ? body : `${JSON.stringify(JSON.parse(body), null, 2)}\n`);
    });
}

registerClusterCommands(program);

const lab = program.command("lab").description("the seed's topology in network namespaces on this machine: master, worker-1..3, a gateway, pod-1..3");
const labPrefix = new Option("--prefix <p>", "name prefix of the lab's namespaces, files and sockets").default("weft");
const labOf = async (prefix: string, datastore?: "sqlite" | "etcd", uplinkMTU?: number) => new (await import("../lab/lab.js")).Lab({ prefix, datastore, uplinkMTU, log: (l) => process.stderr.write(`${l}\n`) });
const labDatastore = (prefix: string) => (existsSync(`/run/weft-lab/${prefix}/weft.db`) ? "sqlite" : existsSync(`/run/weft-lab/${prefix}/etcd`) ? "etcd" : undefined);

lab
  .command("up")
  .description("build the lab, start a weft node per host, wire the pods, then print routes and a pod x pod reachability matrix")
  .addOption(new Option("--mode <mode>", "routing mode (the default pool's ipipMode/vxlanMode)").choices(["ipip", "vxlan", "direct", "crosssubnet"]).default("ipip"))
  .addOption(new Option("--datastore <kind>", "where the cluster state lives: the lab's own SQLite file, or etcd in the gateway namespace; static = no datastore, each node from a routes file").choices(["sqlite", "etcd", "static"]).default("sqlite"))
  .option("--src-dst-check", "the gateway drops frames whose addresses are not the sending host's, as a cloud's source/destination check does")
  .addOption(new Option("--uplink-mtu <bytes>", "MTU of the underlay: the gateway's bridges and the hosts' eth0, e.g. 9000 for jumbo frames (default 1500); weft0 and the pods follow").argParser((t) => wholeNumber("--uplink-mtu", t, 1280, 9000)))
  .addOption(labPrefix)
  .action(async (opts: { mode: "ipip" | "vxlan" | "direct" | "crosssubnet"; datastore: "sqlite" | "etcd" | "static"; prefix: string; srcDstCheck?: boolean; uplinkMtu?: number }) => {
    const { printLab } = await import("../lab/report.js");
    const l = await labOf(opts.prefix, opts.datastore === "static" ? undefined : opts.datastore, opts.uplinkMtu);
    const t0 = Date.now();
    await l.up(opts.mode);
    if (opts.srcDstCheck) await l.setSrcDstCheck(true);
    process.stdout.write(await printLab(l, Date.now() - t0));
  });

lab
  .command("status")
  .description("print the lab's nodes, routes and reachability matrix")
  .addOption(labPrefix)
  .action(async (opts: { prefix: string }) => {
    const { printLab } = await import("../lab/report.js");
    const l = await labOf(opts.prefix, labDatastore(opts.prefix));
    if ((await l.namespaces()).length === 0) throw new Error(`no lab "${opts.prefix}" is up; start one with "weft lab up"`);
    process.stdout.write(await printLab(l));
  });

lab
  .command("exec")
  .description("run a command in a lab host or pod, e.g. weft lab exec pod-1 -- ping 192.168.97.193; weft commands run on a host reach its node and the lab's datastore (WEFT_CONTROL, WEFT_DATASTORE)")
  .argument("<target>", "master, worker-1..3, gw, pod-1..3")
  .argument("<cmd...>", "the command")
  .addOption(labPrefix)
  .action(async (target: string, cmd: string[], opts: { prefix: string }) => {
    const { spawnSync } = await import("node:child_process");
    const ds = labDatastore(opts.prefix);
    const l = await labOf(opts.prefix, ds);
    const { HOSTS, PODS } = await import("../lab/topology.js");
    const targets = [...HOSTS.map((h) => h.name), "gw", ...PODS.map((p) => p.name)];
    if (!targets.includes(target)) throw new ConfigError(`no lab host or pod "${target}"; choose from ${targets.join(", ")}`);
    if (!(await l.namespaces()).includes(l.ns(target))) throw new ConfigError(`no lab "${opts.prefix}" is up (no namespace ${l.ns(target)}); start one with "weft lab up"`);
    // weft commands run there find the lab's node and datastore, as on a host of its own.
    const env = { ...process.env };
    if (ds && !env.WEFT_DATASTORE) env.WEFT_DATASTORE = l.datastoreURL;
    if (HOSTS.some((h) => h.name === target) && !env.WEFT_CONTROL) env.WEFT_CONTROL = l.controlSocket(target);
    const r = spawnSync("ip", ["netns", "exec", l.ns(target), ...cmd], { stdio: "inherit", env });
    process.exit(r.status ?? 1);
  });

lab
  .command("apply")
  .description("apply a manifest to the lab's datastore (e.g. the seed's ippool.yaml)")
  .requiredOption("-f, --filename <file>", "manifest file")
  .addOption(labPrefix)
  .action(async (opts: { filename: string; prefix: string }) => {
    const text = readManifest(opts.filename);
    parseManifests(text, opts.filename); // each document checked here first: exit 2, naming the user's file
    const ds = labDatastore(opts.prefix);
    if (!ds) throw new ConfigError(`lab "${opts.prefix}" has no datastore (is it up, and not --datastore static?)`);
    const l = await labOf(opts.prefix, ds);
    process.stdout.write(await l.apply(text));
  });

lab
  .command("tour")
  .description("replay the seed's walkthrough: IPIP, direct with and without source/destination checks, CrossSubnet, VXLAN with BGP off")
  .addOption(labPrefix)
  .action(async (opts: { prefix: string }) => {
    const { runTour } = await import("../lab/tour.js");
    const l = await labOf(opts.prefix, "sqlite");
    await l.up("ipip");
    const outcomes = await runTour(l, (line) => process.stdout.write(`${line}\n`));
    const surprises = outcomes.filter((o) => o.reached.p1p2 !== o.expected.p1p2 || o.reached.p1p3 !== o.expected.p1p3);
    process.stdout.write(`\n${surprises.length ? `${surprises.length} step(s) did not match the walkthrough` : "every step matched the walkthrough"}; the lab stays up (weft lab down removes it)\n`);
    if (surprises.length) process.exitCode = 1;
  });

lab
  .command("down")
  .description("remove every namespace, process and file of the lab (safe after a crash, safe to repeat)")
  .addOption(labPrefix)
  .action(async (opts: { prefix: string }) => {
    await (await labOf(opts.prefix)).down();
  });

const BENCH_PATH_LIST = BENCH_PATHS.join(",");
const bench = program.command("bench").description("measure the data plane against the kernel, or BGP convergence at scale");
bench
  .command("bgp")
  .description("BGP scale: N node processes on one bridge; time from the last start until every node has every block")
  .option("--nodes <n>", "node count, 1-200 (clients when --reflectors is set)", "25")
  .option("--reflectors <r>", "route reflectors, 0-10 (0 = full mesh)", "0")
  .option("--prefix <p>", "name prefix of the namespaces", "bgps")
  .option("--json <file>", "append the result as JSON")
  .action(async (opts: { nodes: string; reflectors: string; prefix: string; json?: string }) => {
    const nodes = wholeNumber("--nodes", opts.nodes, 1, 200);
    const reflectors = wholeNumber("--reflectors", opts.reflectors, 0, 10);
    if (nodes + reflectors < 2) throw new ConfigError("a BGP scale run needs at least 2 nodes (--nodes plus --reflectors)");
    const { checkLabPrefix } = await import("../lab/lab.js");
    checkLabPrefix(opts.prefix);
    const { bgpScale } = await import("../bench/bgp-scale.js");
    const r = await bgpScale({ nodes, reflectors, prefix: opts.prefix, progress: (l) => process.stderr.write(`${l}\n`) });
    process.stdout.write(`${r.topology}: every node had every block ${r.convergeSeconds.toFixed(1)} s after the last node started (starting them took ${r.startSeconds.toFixed(1)} s)\n`);
    if (opts.json) (await import("node:fs")).appendFileSync(opts.json, `${JSON.stringify(r)}\n`);
  });

bench
  .command("dataplane", { isDefault: true })
  .description(
    "in one lab run, kernel direct, kernel VXLAN, weft IPIP (also with the hosts merging received packets as a NIC's GRO does; needs ethtool), weft VXLAN (also with its receive thread forced on, and busy-polling) and weft CrossSubnet, pod-1 -> pod-2: TCP with 1 and 4 streams, TCP request/response latency (p50, p99), 64-byte UDP packets/s, CPU seconds per Gbit, each as a ratio to kernel VXLAN; weft paths also show time per data-path stage",
  )
  .option("--seconds <n>", "length of each TCP run (latency and UDP runs take at most 5 s)", "10")
  .option("--paths <list>", `comma-separated subset of ${BENCH_PATH_LIST} (kernel-vxlan is always measured)`)
  .option("--json <file>", "also write the results as JSON to this file")
  .option("--svg <file>", "also write a chart of the ratios as SVG")
  .option("--png <file>", "also write the chart as PNG")
  .option("--prefix <p>", "name prefix of the bench lab's namespaces", "bench")
  .action(async (opts: { json?: string; svg?: string; png?: string; seconds: string; paths?: string; prefix: string }) => {
    const { runBench, formatBench } = await import("../bench/bench.js");
    const seconds = wholeNumber("--seconds", opts.seconds, 1, 120);
    const paths = opts.paths?.split(",").map((p) => p.trim());
    for (const p of paths ?? []) if (!(BENCH_PATHS as readonly string[]).includes(p)) throw new ConfigError(`unknown path "${p}" in --paths; choose from ${BENCH_PATHS.join(", ")}`);
    const tty = process.stderr.isTTY;
    const progress = (l: string) => process.stderr.write(tty ? `\r\x1b[K${l}` : `${l}\n`);
    const report = await runBench({ seconds, prefix: opts.prefix, paths: paths as never, progress });
    if (tty) process.stderr.write("\n");
    const { writeFileSync } = await import("node:fs");
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    if (opts.svg || opts.png) {
      const { benchSvg, benchPng } = await import("../bench/chart.js");
      const svg = benchSvg(report);
      if (opts.svg) writeFileSync(opts.svg, svg);
      if (opts.png) writeFileSync(opts.png, await benchPng(svg));
    }
    process.stdout.write(`${formatBench(report)}\n`);
  });

try {
  await program.parseAsync(process.argv);
  // Done: exit now. A connection still being attempted (an etcd member cut off, whose
  // packets are dropped) would otherwise hold the process for the kernel's connect
  // timeout, about 130 s after the answer was printed.
  await outputWritten();
  process.exit();
} catch (err) {
  await outputWritten();
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  fail(err);
}
