// Typed face of the N-API addon (weft_native.c), the only code with fds and ioctls.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const KIND_TUN = 0;
export const KIND_SOCK = 1;

export interface Native {
  tunOpen(name: string, vnetHdr: boolean): number;
  tunSetOffload(fd: number, flags: number): boolean;
  tunDelete(name: string): void;
  udpSetGro(fd: number, on: boolean): boolean;
  udpGsoSupported(fd: number): boolean;
  linkSet(name: string, mtu: number, up: boolean): void;
  /** An interface as this network namespace sees it (ioctls), or null when there is none. */
  linkGet(name: string): { ifindex: number; mtu: number; up: boolean; driver: string } | null;
  linkEventsOpen(): number;
  linkEventsRead(fd: number, names: string[]): { overflow: boolean; links: Array<{ changes: number; down: boolean; addressesRemoved: number }> };
  rawOpen(protocol: number): number;
  udpOpen(address: string, port: number): number;
  /** A non-blocking TCP socket bound to address:port (0: any port, for connecting). */
  tcpSocket(address: string, port: number): number;
  /** TCP MD5 signatures (RFC 2385) with peer; an empty key removes them. */
  tcpMd5(fd: number, peer: string, key: string): void;
  /** GTSM (RFC 5082): send with TTL 255, drop segments with a TTL below 256 - hops; 0 takes it off. */
  tcpTtlSecurity(fd: number, hops: number): void;
  close(fd: number): void;
  /** Packets received into slots; -1 when the socket reports an error about what was sent (read it with socketErrors). */
  recvBatch(fd: number, kind: number, memory: ArrayBuffer, descOff: number, slotBase: number, slotSize: number, headroom: number, max: number): number;
  /** Drains a socket's error queue: [destination (host order), path MTU (0 unless the error is EMSGSIZE), errno] per error. */
  socketErrors(fd: number): Array<[number, number, number]>;
  sendBatch(fd: number, kind: number, memory: ArrayBuffer, descOff: number, count: number, channel: number, gso: boolean): number;
  /** Watches fd; errorQueue: a tunnel socket, whose queued errors count as readable (see socketErrors). */
  pollStart(fd: number, onReadable: (status: number) => void, errorQueue: boolean): unknown;
  pollStop(handle: unknown): void;
  /** Busy-poll: index of the first readable fd within budgetNs, or -1 (yields the CPU between checks). */
  spinReady(fds: Int32Array, budgetNs: number): number;
  /** Byte offsets of the C descriptor's fields (and its size), to check against the wasm layout. */
  descLayout(): Record<"size" | "off" | "len" | "addr" | "port" | "channel" | "reason" | "gso" | "flags" | "tail", number>;
}

/** Project root, whether running from sources (router/native) or dist/router/native. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error("weft: cannot find the project root (package.json)");
    dir = up;
  }
  return dir;
}

let loaded: Native | undefined;

export function native(): Native {
  if (loaded) return loaded;
  const file = path.join(projectRoot(), "build", "Release", "weft_native.node");
  if (!existsSync(file)) {
    throw new Error(`weft: native addon missing at ${file}; run "npm install" (it builds with node-gyp)`);
  }
  loaded = createRequire(import.meta.url)(file) as Native;
  return loaded;
}
