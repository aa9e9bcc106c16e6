#!/usr/bin/env node
// The weft command.
import { Command, CommanderError, Option } from "commander";
import { ConfigError, loadStaticConfig } from "../node/config.js";
import { resetNode, runStaticNode } from "../node/run.js";
import { controlGet, resolveSocket } from "../control/client.js";
import { logger } from "./log.js";

/** Exit code for bad input (config, arguments): nothing was touched. */
export const EXIT_USAGE = 2;

function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`weft: ${msg}\n`);
  process.exit(err instanceof ConfigError ? EXIT_USAGE : 1);
}

const program = new Command("weft")
  .description("Userspace overlay router: Calico's routing modes (IPIP, VXLAN, direct) over a TUN device with a WebAssembly fast path")
  .version("0.1.0")
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s) });

const node = program.command("node").description("run and inspect the node on this host");

node
  .command("run")
  .description("run this host's node (with --config: static routes, no datastore)")
  .requiredOption("--config <file>", "static-routes config (YAML): name, address, encapsulation, routes")
  .option("--control <path>", "control socket path (default /run/weft/<name>.sock)")
  .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error"]).default("info"))
  .action(async (opts: { config: string; control?: string; logLevel: string }) => {
    const cfg = loadStaticConfig(opts.config);
    await runStaticNode(cfg, opts.config, logger(opts.logLevel), opts.control);
    process.exit(0);
  });

node
  .command("reset")
  .description("remove everything weft installed: routes with weft's protocol and the tunnel device")
  .option("--config <file>", "take the tunnel device name from this config")
  .option("--tunnel <name>", "tunnel device name", "weft0")
  .action(async (opts: { config?: string; tunnel: string }) => {
    const dev = opts.config ? loadStaticConfig(opts.config).tunnelDevice : opts.tunnel;
    await resetNode(dev, logger());
  });

for (const [name, url, what] of [
  ["status", "/status", "the node's settings and packet counters (JSON)"],
  ["routes", "/routes", "routes in the node's fast path, with their source (JSON)"],
  ["metrics", "/metrics", "Prometheus metrics"],
] as const) {
  node
    .command(name)
    .description(`print ${what}`)
    .option("--node <name>", "which node, when several run on this machine")
    .option("--control <path>", "control socket path")
    .action(async (opts: { node?: string; control?: string }) => {
      const body = await controlGet(resolveSocket(opts), url);
      process.stdout.write(url === "/metrics" ? body : `${JSON.stringify(JSON.parse(body), null, 2)}\n`);
    });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  fail(err);
}
