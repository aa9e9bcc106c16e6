// IPv4 header view (RFC 791): named offsets, one length check, then plain loads.
import { checksum, loadBE16, loadBE32, storeBE16, storeBE32, sum16 } from "./checksum";

export const VER_IHL: u32 = 0;
export const TOS: u32 = 1;
export const TOTAL_LEN: u32 = 2;
export const IDENT: u32 = 4;
export const FLAGS_FRAG: u32 = 6;
export const TTL: u32 = 8;
export const PROTOCOL: u32 = 9;
export const CHECKSUM: u32 = 10;
export const SRC: u32 = 12;
export const DST: u32 = 16;
export const HEADER_LEN: u32 = 20;

export const PROTO_ICMP: u8 = 1;
export const PROTO_IPIP: u8 = 4;
export const PROTO_UDP: u8 = 17;
export const FLAG_DF: u32 = 0x4000;
export const FLAG_MF: u32 = 0x2000;
export const FRAG_OFFSET_MASK: u32 = 0x1fff;

// Checks an IPv4 header in a buffer of len bytes. Returns the header length in bytes,
// or 0 if the packet is not a well-formed IPv4 packet (version, IHL, total length).
export function checkHeader(p: u32, len: u32): u32 {
  if (len < HEADER_LEN) return 0;
  const vi = <u32>load<u8>(p + VER_IHL);
  if (vi >> 4 != 4) return 0;
  const ihl = (vi & 0xf) << 2;
  if (ihl < HEADER_LEN || ihl > len) return 0;
  const total = loadBE16(p + TOTAL_LEN);
  if (total < ihl || total > len) return 0;
  return ihl;
}

// True when the header checksum of a checked header of ihl bytes verifies.
export function checksumOk(p: u32, ihl: u32): bool {
  let t = sum16(p, ihl);
  return t == 0xffff;
}

@inline export function totalLen(p: u32): u32 { return loadBE16(p + TOTAL_LEN); }
@inline export function src(p: u32): u32 { return loadBE32(p + SRC); }
@inline export function dst(p: u32): u32 { return loadBE32(p + DST); }
@inline export function protocol(p: u32): u8 { return load<u8>(p + PROTOCOL); }
@inline export function flagsFrag(p: u32): u32 { return loadBE16(p + FLAGS_FRAG); }

// Writes a 20-byte header without options at p and fills in its checksum.
export function emit(p: u32, tos: u8, total: u32, ident: u32, flags: u32, ttl: u8, proto: u8, srcAddr: u32, dstAddr: u32): void {
  store<u8>(p + VER_IHL, 0x45);
  store<u8>(p + TOS, tos);
  storeBE16(p + TOTAL_LEN, total);
  storeBE16(p + IDENT, ident);
  storeBE16(p + FLAGS_FRAG, flags);
  store<u8>(p + TTL, ttl);
  store<u8>(p + PROTOCOL, proto);
  store<u16>(p + CHECKSUM, 0);
  storeBE32(p + SRC, srcAddr);
  storeBE32(p + DST, dstAddr);
  store<u16>(p + CHECKSUM, checksum(p, HEADER_LEN));
}
