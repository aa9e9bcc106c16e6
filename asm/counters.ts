// Packet counters, u64 each. Indexes are mirrored by name in
// router/dataplane/counters.ts (a unit test checks both agree).
import { COUNTERS } from "./layout";

export const TUN_RX: u32 = 0;
export const IPIP_TX: u32 = 1;
export const VXLAN_TX: u32 = 2;
export const IPIP_RX: u32 = 3;
export const VXLAN_RX: u32 = 4;
export const TUN_TX: u32 = 5;
export const ICMP_UNREACHABLE_SENT: u32 = 6;
export const ICMP_FRAG_NEEDED_SENT: u32 = 7;
export const BYTES_ENCAPSULATED: u32 = 8;
export const BYTES_DECAPSULATED: u32 = 9;
export const TSO_PACKETS_SPLIT: u32 = 10; // super-packets from the TUN split in wasm
export const TSO_SEGMENTS: u32 = 11; // segments they were split into
export const GRO_PACKETS_WRITTEN: u32 = 12; // coalesced packets written to the TUN
export const GRO_SEGMENTS_MERGED: u32 = 13; // segments merged into them
export const CHECKSUMS_COMPLETED: u32 = 14; // partial checksums finished before sending
export const SUPER_PACKETS_RECEIVED: u32 = 15; // inner packets longer than the tunnel (merged by this host's NIC) split again for the TUN
// Drops, by reason.
export const DROP_MALFORMED_INNER: u32 = 16;
export const DROP_MALFORMED_OUTER: u32 = 17;
export const DROP_BAD_CHECKSUM: u32 = 18;
export const DROP_UNKNOWN_SOURCE: u32 = 19;
export const DROP_WRONG_VNI: u32 = 20;
export const DROP_BAD_VXLAN_FLAGS: u32 = 21;
export const DROP_WRONG_MAC: u32 = 22;
export const DROP_NOT_IPV4: u32 = 23;
export const DROP_TOO_BIG_NO_DF: u32 = 24;
export const DROP_NO_ROUTE: u32 = 25;
export const DROP_TRUNCATED: u32 = 26;
export const DROP_NOT_IPIP: u32 = 27;
export const DROP_ROUTE_NOT_ENCAPSULATED: u32 = 28;
export const DROP_OUT_OF_SPACE: u32 = 29;
export const DROP_BAD_OFFLOAD_HEADER: u32 = 30;
// Packets without DF longer than a smaller path MTU allows, fragmented to fit, and the fragments.
export const PACKETS_FRAGMENTED: u32 = 31;
export const FRAGMENTS_SENT: u32 = 32;

@inline
export function count(index: u32, n: u64 = 1): void {
  const p = COUNTERS + (index << 3);
  store<u64>(p, load<u64>(p) + n);
}
