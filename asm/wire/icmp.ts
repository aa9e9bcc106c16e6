// ICMP errors (RFC 792, RFC 1191) written in front of the offending packet.
import { checksum, storeBE16 } from "./checksum";
import * as ipv4 from "./ipv4";

export const TYPE: u32 = 0;
export const CODE: u32 = 1;
export const CHECKSUM: u32 = 2;
export const REST: u32 = 4; // unused (16) + next-hop MTU (16) for code 4
export const HEADER_LEN: u32 = 8;

export const TYPE_ECHO_REPLY: u8 = 0;
export const TYPE_DEST_UNREACHABLE: u8 = 3;
export const TYPE_ECHO_REQUEST: u8 = 8;
export const CODE_NET_UNREACHABLE: u8 = 0;
export const CODE_HOST_UNREACHABLE: u8 = 1;
export const CODE_FRAG_NEEDED: u8 = 4;

// Whether an ICMP error may be sent about the packet at p (RFC 1122 3.2.2): never
// about an ICMP error, a non-first fragment, or a packet from no one.
export function mayAnswer(p: u32, ihl: u32, len: u32): bool {
  if (ipv4.flagsFrag(p) & ipv4.FRAG_OFFSET_MASK) return false;
  const s = ipv4.src(p);
  if (s == 0 || s >> 28 == 0xe || s == 0xffffffff) return false;
  if (ipv4.protocol(p) == ipv4.PROTO_ICMP) {
    if (len < ihl + 1) return false;
    const t = load<u8>(p + ihl);
    if (t != TYPE_ECHO_REQUEST && t != TYPE_ECHO_REPLY && t != 13 && t != 14) return false;
  }
  return true;
}

// Builds a destination-unreachable message about the checked packet at p (header
// length ihl) in the HEADROOM before it: IP header and ICMP header land at p-28 and
// the quoted header plus 8 bytes stay where they are. Returns the message length;
// the message starts at p - 28.
export function emitUnreachable(p: u32, ihl: u32, code: u8, mtu: u32, from: u32): u32 {
  const quoted = min(ipv4.totalLen(p), ihl + 8);
  const icmpAt = p - HEADER_LEN;
  const ipAt = icmpAt - ipv4.HEADER_LEN;
  const to = ipv4.src(p);
  store<u8>(icmpAt + TYPE, TYPE_DEST_UNREACHABLE);
  store<u8>(icmpAt + CODE, code);
  store<u16>(icmpAt + CHECKSUM, 0);
  storeBE16(icmpAt + REST, 0);
  storeBE16(icmpAt + REST + 2, code == CODE_FRAG_NEEDED ? mtu : 0);
  const icmpLen = HEADER_LEN + quoted;
  store<u16>(icmpAt + CHECKSUM, checksum(icmpAt, icmpLen));
  const total = ipv4.HEADER_LEN + icmpLen;
  ipv4.emit(ipAt, 0xc0, total, 0, 0, 64, ipv4.PROTO_ICMP, from, to);
  return total;
}
