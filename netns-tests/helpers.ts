// Shared by the netns tests: labs, transfers and captures.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll } from "vitest";
import path from "node:path";
import { Lab, type NodeSettings } from "../router/lab/lab.js";
import type { LabMode } from "../router/lab/topology.js";
import { projectRoot } from "../router/native/index.js";

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("netns tests need root (network namespaces, TUN, raw sockets); run them as root");
}

const run = promisify(execFile);

/**
 * A bare namespace standing for one host (tests that need no lab): lo up and an uplink
 * veth up0 (peer up1, both up) holding address. A leftover of the same name is replaced.
 */
export async function hostNamespace(ns: string, address: string): Promise<void> {
  requireRoot();
  await removeNamespace(ns);
  await run("ip", ["netns", "add", ns]);
  await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  await run("ip", ["-n", ns, "link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
  await run("ip", ["-n", ns, "addr", "add", address, "dev", "up0"]);
  await run("ip", ["-n", ns, "link", "set", "up0", "up"]);
  await run("ip", ["-n", ns, "link", "set", "up1", "up"]);
}

/** Polls check until it holds; throws naming what after ms. Returns how long it took. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - t0;
}

/** Kills whatever still runs in a namespace and deletes it (safe to repeat). */
export async function removeNamespace(ns: string): Promise<void> {
  const pids = await run("ip", ["netns", "pids", ns]).then(({ stdout }) => stdout.split(/\s+/).filter(Boolean), () => []);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone */
    }
  }
  await run("ip", ["netns", "del", ns]).catch(() => {});
}

/**
 * Runs `weft ARGS` in a namespace to its end (at most 60 s: on 2 vCPUs an `ip` call has
 * stalled for ~20 s while another test file deleted dozens of veths); exit code and stderr.
 */
export async function weftIn(ns: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
  try {
    await run("ip", ["netns", "exec", ns, "timeout", "60", process.execPath, cli, ...args], { encoding: "utf8" });
    return { code: 0, stderr: "" };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

/** The routes weft owns (protocol 87) in a namespace, as ip prints them. */
export async function weftRoutesIn(ns: string): Promise<string> {
  return (await run("ip", ["-n", ns, "route", "show", "proto", "87"], { encoding: "utf8" })).stdout.trim();
}

export interface LabTestOptions extends NodeSettings {
  datastore?: "sqlite" | "etcd";
  uplinkMTU?: number;
}

export function newLab(prefix: string, opts: LabTestOptions = {}): Lab {
  requireRoot();
  return new Lab({ prefix, log: (l) => console.log(`[${prefix}] ${l}`), ...opts });
}

/** A lab for the enclosing describe block: up before its tests, always torn down after. */
export function useLab(prefix: string, mode: LabMode, opts: LabTestOptions & { setup?: (lab: Lab) => Promise<void> } = {}): Lab {
  const lab = newLab(prefix, opts);
  beforeAll(async () => {
    await lab.up(mode);
    await opts.setup?.(lab);
  });
  afterAll(async () => {
    await lab.down();
  });
  return lab;
}

const transferJs = () => path.join(projectRoot(), "dist", "router", "lab", "transfer.js");

/** Runs cmd in a namespace in the background; resolves with its stdout when it exits. */
export function background(lab: Lab, target: string, args: string[], readyOn?: RegExp) {
  const child = spawn("ip", ["netns", "exec", lab.ns(target), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  const ready = new Promise<void>((resolve, reject) => {
    if (!readyOn) return resolve();
    const timer = setTimeout(() => reject(new Error(`${args[0]} in ${target} not ready after 20 s: ${err}`)), 20_000);
    child.stderr.on("data", (d) => {
      err += d;
      if (readyOn.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  if (!readyOn) child.stderr.on("data", (d) => (err += d));
  const done = new Promise<string>((resolve) => child.on("close", () => resolve(out)));
  return { child, ready, done, stderr: () => err };
}

export interface TransferResult {
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
  seconds: number;
  mbps: number;
}

/** Sends bytes of random data over TCP from one pod to another; both ends hash it. */
export async function transfer(lab: Lab, from: string, to: string, toAddr: string, bytes: number, port = 5001): Promise<TransferResult> {
  const recv = background(lab, to, [process.execPath, transferJs(), "recv", String(port)], /listening/);
  await recv.ready;
  const t0 = Date.now();
  const sent = JSON.parse(await lab.exec(from, [process.execPath, transferJs(), "send", toAddr, String(port), String(bytes)], { timeoutMs: 130_000 }));
  const received = JSON.parse((await recv.done).trim());
  const seconds = (Date.now() - t0) / 1000;
  return { sent, received, seconds, mbps: (bytes * 8) / seconds / 1e6 };
}

/** Captures on an interface of a namespace while action runs; returns tshark's field lines. */
export async function capture(lab: Lab, target: string, iface: string, filter: string, fields: string[], action: () => Promise<unknown>, count = 4): Promise<string[][]> {
  const args = ["tshark", "-n", "-l", "-i", iface, "-f", filter, "-c", String(count), "-a", "duration:20", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"];
  for (const f of fields) args.push("-e", f);
  const cap = background(lab, target, args, /Capture started/);
  await cap.ready;
  await new Promise((r) => setTimeout(r, 300));
  await action();
  const out = await cap.done;
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("|"));
}
