// Checks of command-line values that commander leaves as text: each bad value is a
// ConfigError (exit 2) naming the option, the range and what was given.
import { ConfigError } from "../node/config.js";
import { IFNAME } from "../native/iproute.js";
import { wholeNumberIn } from "../node/env.js";
import { seconds } from "../bgp/peers.js";

/** A whole number from min to max, or a ConfigError naming the option. */
export function wholeNumber(option: string, text: string, min: number, max: number): number {
  const n = wholeNumberIn(text, min, max);
  if (n === undefined) throw new ConfigError(`${option} must be a whole number from ${min} to ${max}, not "${text}"`);
  return n;
}

/** A Linux interface name (the same rule as the node config's tunnelDevice). */
export function interfaceName(option: string, text: string): string {
  if (!IFNAME.test(text)) {
    throw new ConfigError(`${option} must be an interface name of 1-15 letters, digits, '.', '-' or '_', not "${text}"`);
  }
  return text;
}

/**
 * Calico's iptablesMarkMask (FELIX_IPTABLESMARKMASK): the mark bits weft may use, hex
 * (0xffff0000) or decimal. weft takes the lowest of them for the tunnel mark.
 */
export function markMaskBit(option: string, text: string): number {
  const t = text.trim();
  const n = /^0x[0-9a-f]{1,8}$/i.test(t) ? parseInt(t.slice(2), 16) : /^\d{1,10}$/.test(t) ? Number(t) : NaN;
  if (!(n >= 1 && n <= 0xffffffff)) throw new ConfigError(`${option} must be a nonzero 32-bit mask, hex (0xffff0000) or decimal, not "${text}"`);
  return (n & -n) >>> 0;
}

/** Calico's COMPACTION_PERIOD: a duration (10m, 1h, 90s) in seconds, or 0 for never. */
export function compactionPeriod(text: string): number {
  if (text.trim() === "0") return 0;
  const s = seconds(text.trim());
  if (s === undefined || s < 1) throw new ConfigError(`--compaction-period (or COMPACTION_PERIOD) must be a duration such as 10m, 1h or 90s, or 0 for never, not "${text}"`);
  return s;
}
