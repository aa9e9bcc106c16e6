// The fast path's exports: batch entry points, table updates, layout for the host.
import * as L from "./layout";
import { C_ICMP_SOURCE, C_LOCAL_ADDR, C_LOCAL_MAC, C_OFFLOAD, C_UNDERLAY_MTU, C_VNI, C_VXLAN_PORT, C_VXLAN_SOCKETS } from "./config";
import { lpmLookup } from "./lpm";
import { HEADROOM } from "./forward";
import { sum16, sum16Copy } from "./wire/checksum";

export { encapBatch, decapIpipBatch, decapVxlanBatch } from "./forward";
export { lpmInsert, lpmDelete, lpmReset, lpmNodesLive, leaf } from "./lpm";
export { nodesAdd, nodesClear, nodesHas } from "./nodes";
export { routeSet } from "./routes";
// Descriptor field offsets, exported as globals so the host reads descriptors by name.
export { D_OFF, D_LEN, D_ADDR, D_PORT, D_CHANNEL, D_REASON, D_GSO, D_FLAGS, D_TAIL } from "./layout";

export function configure(localAddr: u32, underlayMtu: u32, vni: u32, vxlanPort: u32, macHi: u32, macLo: u32): void {
  store<u32>(C_LOCAL_ADDR, localAddr);
  store<u32>(C_UNDERLAY_MTU, underlayMtu);
  store<u32>(C_VNI, vni);
  store<u32>(C_VXLAN_PORT, vxlanPort);
  store<u8>(C_LOCAL_MAC + 0, <u8>(macHi >> 8));
  store<u8>(C_LOCAL_MAC + 1, <u8>macHi);
  store<u8>(C_LOCAL_MAC + 2, <u8>(macLo >> 24));
  store<u8>(C_LOCAL_MAC + 3, <u8>(macLo >> 16));
  store<u8>(C_LOCAL_MAC + 4, <u8>(macLo >> 8));
  store<u8>(C_LOCAL_MAC + 5, <u8>macLo);
}

// The address ICMP errors written into the TUN come from (0: the local address).
export function setIcmpSource(addr: u32): void {
  store<u32>(C_ICMP_SOURCE, addr);
}

// Offload bits (config.ts OFFLOAD_*): what the TUN and sockets were set up with.
export function setOffloads(bits: u32): void {
  store<u32>(C_OFFLOAD, bits);
}

// How many VXLAN sockets (source ports) the host opened: flows are spread over them.
export function setVxlanSockets(n: u32): void {
  store<u32>(C_VXLAN_SOCKETS, n < 1 ? 1 : n > L.VXLAN_SOCKETS_MAX ? L.VXLAN_SOCKETS_MAX : n);
}
export function layoutVxlanSocketsMax(): u32 { return L.VXLAN_SOCKETS_MAX; }

export function lookup(addr: u32): u32 {
  return lpmLookup(addr);
}

// Looks up n addresses stored at SCRATCH; returns a checksum so the loop is kept.
export function lookupBench(n: u32, rounds: u32): u32 {
  let acc: u32 = 0;
  for (let r: u32 = 0; r < rounds; r++) {
    for (let i: u32 = 0; i < n; i++) acc += lpmLookup(load<u32>(L.SCRATCH + (i << 2)));
  }
  return acc;
}

export function layoutDescIn(): u32 { return L.DESC_IN; }
export function layoutDescOut(): u32 { return L.DESC_OUT; }
export function layoutDescSize(): u32 { return L.DESC_SIZE; }
export function layoutMaxIn(): u32 { return L.MAX_IN; }
export function layoutMaxOut(): u32 { return L.MAX_OUT; }
export function layoutTally(): u32 { return L.TALLY; }
export function layoutMemoryEnd(): u32 { return L.MEMORY_END; }
export function layoutSlots(): u32 { return L.SLOTS; }
export function layoutSlotsBytes(): u32 { return L.SLOTS_BYTES; }
export function layoutCounters(): u32 { return L.COUNTERS; }
export function layoutCounterCount(): u32 { return L.COUNTER_COUNT; }
export function layoutScratch(): u32 { return L.SCRATCH; }
export function layoutScratchBytes(): u32 { return L.SCRATCH_BYTES; }
export function layoutRouteCap(): u32 { return L.ROUTE_CAP; }
export function layoutLpmBytes(): u32 { return L.MEMORY_END - L.LPM_ROOT; }
export function layoutLpmNodeBytes(): u32 { return 1024; }
export function layoutLpmRootBytes(): u32 { return 65536 << 2; }
export function layoutHeadroom(): u32 { return HEADROOM; }

// The checksum primitives, exposed so tests can hold them to a plain reference.
export function checksumSum(p: u32, len: u32): u32 {
  return sum16(p, len, 0);
}
export function checksumSumCopy(dst: u32, src: u32, len: u32): u32 {
  return sum16Copy(dst, src, len, 0);
}
