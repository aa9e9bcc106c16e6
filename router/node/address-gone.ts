// The node's own address leaving the host while the node runs: a DHCP lease renewed with
// another address, someone removing it. Peers and tunnels keep using the address the
// Node has, so the node's pods were cut off without a word until it was restarted (the
// lab never changes an address). Calico's node also reads its address only when it
// starts; weft says so, and restarts itself when autodetection finds another one.
import type { Logger } from "pino";

/** How long the address may be away before the node acts (a network manager reconfiguring puts it back within this). */
export const ADDRESS_GRACE_MS = 10_000;

export interface NodeAddress {
  cidr: string;
  uplink: string;
  how: string;
}

export interface AddressFollower {
  /** An address was removed from the uplink: look again after the grace period. */
  removed(): void;
  /** Look again now if the address was found gone (the node's periodic check). */
  recheck(): void;
  /** What is wrong, for `weft node status`, or null. */
  problem(): string | null;
  stop(): void;
}

/**
 * Follows the node's address. Gone for the grace period: if it was given (--ip, IP), the
 * node says so and waits for it to come back; if it was autodetected and autodetection
 * now finds another one, the node exits 1 for its service manager to start it again
 * with the new address (weft0 and the routes stay; peers keep this node's routes
 * meanwhile, by graceful restart), as calico-node has to be restarted.
 */
export function followNodeAddress(p: {
  address: NodeAddress;
  hostAddresses: () => Promise<Map<string, string>>;
  detect: () => Promise<NodeAddress>;
  log: Logger;
  exit: (code: number) => void;
  graceMs?: number;
}): AddressFollower {
  const { address, log } = p;
  const ip = address.cidr.split("/")[0];
  const given = address.how.startsWith("given");
  let gone: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const holder = (await p.hostAddresses()).get(ip);
      if (holder) {
        if (gone) log.info({ address: address.cidr, interface: holder }, `this node's address ${ip} is on ${holder} again`);
        gone = null;
        return;
      }
      const was = gone;
      if (given) {
        gone = `its address ${ip} (${address.how}) is on no interface of this host: other nodes cannot reach it or its pods; put the address back, or restart the node with the one it has now`;
      } else {
        let now: NodeAddress | undefined;
        try {
          now = await p.detect();
        } catch (err) {
          gone = `its address ${ip} (${address.how}) is gone from ${address.uplink} and autodetection finds no other (${(err as Error).message}); waiting for one`;
        }
        if (now && now.cidr.split("/")[0] !== ip) {
          log.fatal({ was: address.cidr, now: now.cidr, interface: now.uplink, how: now.how }, `this node's address ${ip} is gone from ${address.uplink} and ${now.uplink} has ${now.cidr} (${now.how}): exiting for the service manager to start the node again with it (weft0 and the routes stay; peers keep this node's routes meanwhile, by graceful restart)`);
          p.exit(1);
          return;
        }
      }
      if (gone !== was) log.error({ address: address.cidr, graceMs: p.graceMs ?? ADDRESS_GRACE_MS }, `this node's address left the host: ${gone}`);
    } catch (err) {
      log.warn({ err: (err as Error).message }, "could not read this host's addresses; looking again at the next check");
    } finally {
      checking = false;
    }
  };
  return {
    removed() {
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void check();
      }, p.graceMs ?? ADDRESS_GRACE_MS);
    },
    recheck() {
      if (gone) void check();
    },
    problem: () => gone,
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
