// The environment switches of `weft node run`: one table, read and checked in one
// place, and listed by `weft node run --help` from the same table. A value outside a
// switch's range is refused with a warning and the default is used: the node still
// starts, and its log names the switch and the value it refused.
import { ConfigError } from "./config.js";

export interface DataPathEnv {
  /** WEFT_OFFLOADS=off: every offload off, whatever the config says. */
  offloadsOff: boolean;
  /** WEFT_RX_THREAD: forced on or off; undefined = the node decides (on with 4+ CPUs). */
  rxThread?: boolean;
  /** WEFT_VXLAN_SOURCE_PORTS: one socket per source port. */
  vxlanSourcePorts: number;
  /** WEFT_BUSY_POLL_US: 0 = off. */
  busyPollMicros: number;
  /** WEFT_BATCH: packets per receive batch. */
  batch: number;
  /** WEFT_STAGE_TIMING=1: stage_ns_* counters. */
  stageTiming: boolean;
}

interface Switch {
  name: string;
  /** The values it takes, as --help shows them. */
  values: string;
  help: string;
  /** The parsed value, or undefined when the text is not one of the values. */
  parse(text: string): Partial<DataPathEnv> | undefined;
}

/** A true/false variable of Calico's, read as Go's strconv.ParseBool reads it; a ConfigError names it otherwise. */
export function calicoBool(name: string, text: string | undefined, dflt: boolean): boolean {
  if (text === undefined || text === "") return dflt;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  throw new ConfigError(`${name}: expected true or false, not "${text}"`);
}

const flag = (text: string): boolean | undefined => (text === "1" ? true : text === "0" ? false : undefined);

/** A whole number from min to max written as digits only, or undefined (also what the CLI's options take). */
export function wholeNumberIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text.trim())) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

export const DEFAULTS: DataPathEnv = { offloadsOff: false, vxlanSourcePorts: 4, busyPollMicros: 0, batch: 64, stageTiming: false };

/** Most packets one receive batch can hold (asm/layout.ts MAX_IN). */
export const MAX_BATCH = 256;

export const SWITCHES: Switch[] = [
  {
    name: "WEFT_OFFLOADS",
    values: "off|on",
    help: "off: every offload off (TUN TSO, GRO, UDP GSO/GRO); on (default): as the config's offloads say",
    parse: (t) => (t === "off" ? { offloadsOff: true } : t === "on" ? { offloadsOff: false } : undefined),
  },
  {
    name: "WEFT_RX_THREAD",
    values: "1|0",
    help: "receive (network -> TUN) on a thread of its own; default on with 4 or more CPUs",
    parse: (t) => (flag(t) === undefined ? undefined : { rxThread: flag(t) }),
  },
  {
    name: "WEFT_VXLAN_SOURCE_PORTS",
    values: "1-8",
    help: `VXLAN source ports, one socket each; flows are spread by hash (default ${DEFAULTS.vxlanSourcePorts})`,
    parse: (t) => {
      const n = wholeNumberIn(t, 1, 8);
      return n === undefined ? undefined : { vxlanSourcePorts: n };
    },
  },
  {
    name: "WEFT_BUSY_POLL_US",
    values: "0-1000",
    help: "after each batch keep polling this many microseconds, yielding the CPU between checks, before sleeping (default 0 = off)",
    parse: (t) => {
      const n = wholeNumberIn(t, 0, 1000);
      return n === undefined ? undefined : { busyPollMicros: n };
    },
  },
  {
    name: "WEFT_BATCH",
    values: `1-${MAX_BATCH}`,
    help: `packets (or super-packets) per receive system call (default ${DEFAULTS.batch})`,
    parse: (t) => {
      const n = wholeNumberIn(t, 1, MAX_BATCH);
      return n === undefined ? undefined : { batch: n };
    },
  },
  {
    name: "WEFT_STAGE_TIMING",
    values: "1|0",
    help: "time each data-path stage into the stage_ns_* counters (a clock read per step; default 0)",
    parse: (t) => (flag(t) === undefined ? undefined : { stageTiming: flag(t) }),
  },
];

/**
 * Reads the switches from an environment. Each unset or empty switch takes its default;
 * each refused value is reported to warn() and takes its default too.
 */
export function readDataPathEnv(env: NodeJS.ProcessEnv, warn: (sw: { name: string; value: string; expected: string }) => void): DataPathEnv {
  const out: DataPathEnv = { ...DEFAULTS };
  for (const sw of SWITCHES) {
    const text = env[sw.name];
    if (text === undefined || text === "") continue;
    const v = sw.parse(text);
    if (v) Object.assign(out, v);
    else warn({ name: sw.name, value: text, expected: sw.values });
  }
  return out;
}

/** The "Environment:" part of `weft node run --help`. */
export function switchesHelp(columns = 80): string {
  return helpSection("Environment (a value outside its range is refused with a warning and the\ndefault is used):", SWITCHES.map((s) => [`${s.name}=${s.values}`, s.help]), columns);
}

/** A --help section: a title, then each entry's name and its text wrapped under it. */
export function helpSection(title: string, entries: Array<[string, string]>, columns = 80): string {
  const out = ["", ...title.split("\n")];
  for (const [name, help] of entries) {
    out.push(`  ${name}`);
    let line = "     ";
    for (const word of help.split(" ")) {
      if (line.length + word.length + 1 > columns && line.trim()) {
        out.push(line);
        line = "     ";
      }
      line += ` ${word}`;
    }
    out.push(line);
  }
  return out.join("\n");
}
