// Checks of command-line values that commander leaves as text: each bad value is a
// ConfigError (exit 2) naming the option, the range and what was given.
import { ConfigError } from "../node/config.js";
import { IFNAME } from "../native/iproute.js";
import { wholeNumberIn } from "../node/env.js";

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
