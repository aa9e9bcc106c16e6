// Batch entry points: one call per batch of descriptors (see layout.ts). Each
// descriptor comes in as a received packet and leaves with an output channel and
// the bytes to send (offset/length/peer rewritten in place).
import * as L from "./layout";
import * as C from "./counters";
import { localAddr, nextIpId, underlayMtu, vni, vxlanPort, C_LOCAL_MAC } from "./config";
import { lpmLookup } from "./lpm";
import { nodesHas } from "./nodes";
import { routeAt, R_ENCAP, R_NEXT_HOP, R_VTEP_MAC } from "./routes";
import * as ipv4 from "./wire/ipv4";
import * as icmp from "./wire/icmp";
import * as eth from "./wire/ethernet";
import * as vxlan from "./wire/vxlan";
import { storeBE16 } from "./wire/checksum";

// Room in front of every received packet for the headers written there.
export const HEADROOM: u32 = 64;
export const IPIP_OVERHEAD: u32 = ipv4.HEADER_LEN;
export const VXLAN_OVERHEAD: u32 = ipv4.HEADER_LEN + 8 + vxlan.HEADER_LEN + eth.HEADER_LEN; // 50

@inline function desc(i: u32): u32 {
  return L.DESC + i * L.DESC_SIZE;
}

@inline function drop(d: u32, reason: u32): void {
  store<u8>(d + L.D_CHANNEL, L.CH_DROP);
  store<u8>(d + L.D_REASON, <u8>reason);
  C.count(reason);
}

// Replaces descriptor d's packet (checked header at p, ihl) with an ICMP
// destination-unreachable sent back into the TUN, if one may be sent.
function answerUnreachable(d: u32, p: u32, ihl: u32, len: u32, code: u8, mtu: u32, dropReason: u32): void {
  if (!icmp.mayAnswer(p, ihl, len)) {
    drop(d, dropReason);
    return;
  }
  const n = icmp.emitUnreachable(p, ihl, code, mtu, localAddr());
  store<u32>(d + L.D_OFF, p - icmp.HEADER_LEN - ipv4.HEADER_LEN);
  store<u32>(d + L.D_LEN, n);
  store<u8>(d + L.D_CHANNEL, L.CH_TUN);
  C.count(code == icmp.CODE_FRAG_NEEDED ? C.ICMP_FRAG_NEEDED_SENT : C.ICMP_UNREACHABLE_SENT);
}

// Per-channel packet counts of a batch, packed 10 bits each (MAX_BATCH < 1024), so the
// host knows which fds to send on without looking at descriptors.
@inline function tally(count: u32): u32 {
  let packed: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const ch = <u32>load<u8>(desc(i) + L.D_CHANNEL);
    if (ch != 0) packed += 1 << ((ch - 1) * 10);
  }
  return packed;
}

// Packets read from the TUN (pod traffic leaving this host): route and encapsulate.
export function encapBatch(count: u32): u32 {
  const mtuBase = underlayMtu();
  for (let i: u32 = 0; i < count; i++) {
    const d = desc(i);
    const p = load<u32>(d + L.D_OFF);
    const len = load<u32>(d + L.D_LEN);
    C.count(C.TUN_RX);
    const ihl = ipv4.checkHeader(p, len);
    if (ihl == 0) {
      // IPv6 from the TUN is not ours to carry (yet); anything else is malformed.
      drop(d, len > 0 && load<u8>(p) >> 4 == 6 ? C.DROP_NOT_IPV4 : C.DROP_MALFORMED_INNER);
      continue;
    }
    const total = ipv4.totalLen(p);
    const route = lpmLookup(ipv4.dst(p));
    if (route == 0) {
      answerUnreachable(d, p, ihl, total, icmp.CODE_NET_UNREACHABLE, 0, C.DROP_NO_ROUTE);
      continue;
    }
    const r = routeAt(route);
    const encap = load<u8>(r + R_ENCAP);
    const overhead = encap == L.ENCAP_VXLAN ? VXLAN_OVERHEAD : IPIP_OVERHEAD;
    const frag = ipv4.flagsFrag(p);
    if (total + overhead > mtuBase) {
      if (frag & ipv4.FLAG_DF) {
        answerUnreachable(d, p, ihl, total, icmp.CODE_FRAG_NEEDED, mtuBase - overhead, C.DROP_TOO_BIG_NO_DF);
      } else {
        drop(d, C.DROP_TOO_BIG_NO_DF);
      }
      continue;
    }
    const nextHop = load<u32>(r + R_NEXT_HOP);
    if (encap == L.ENCAP_IPIP) {
      const o = p - ipv4.HEADER_LEN;
      // Outer DF follows the inner packet, as the kernel's ipip tunnel does with pmtudisc.
      ipv4.emit(o, load<u8>(p + ipv4.TOS), total + ipv4.HEADER_LEN, nextIpId(), frag & ipv4.FLAG_DF, 64, ipv4.PROTO_IPIP, localAddr(), nextHop);
      store<u32>(d + L.D_OFF, o);
      store<u32>(d + L.D_LEN, total + ipv4.HEADER_LEN);
      store<u32>(d + L.D_ADDR, nextHop);
      store<u16>(d + L.D_PORT, 0);
      store<u8>(d + L.D_CHANNEL, L.CH_IPIP);
      C.count(C.IPIP_TX);
      C.count(C.BYTES_ENCAPSULATED, total);
    } else if (encap == L.ENCAP_VXLAN) {
      const e = p - eth.HEADER_LEN;
      const v = e - vxlan.HEADER_LEN;
      eth.copyMac(e + eth.DST, r + R_VTEP_MAC);
      eth.copyMac(e + eth.SRC, C_LOCAL_MAC);
      storeBE16(e + eth.ETHERTYPE, eth.TYPE_IPV4);
      vxlan.emit(v, vni());
      store<u32>(d + L.D_OFF, v);
      store<u32>(d + L.D_LEN, total + vxlan.HEADER_LEN + eth.HEADER_LEN);
      store<u32>(d + L.D_ADDR, nextHop);
      store<u16>(d + L.D_PORT, <u16>vxlanPort());
      store<u8>(d + L.D_CHANNEL, L.CH_VXLAN);
      C.count(C.VXLAN_TX);
      C.count(C.BYTES_ENCAPSULATED, total);
    } else {
      // A direct route is the kernel's: it never points into the TUN.
      drop(d, C.DROP_ROUTE_NOT_ENCAPSULATED);
    }
  }
  return tally(count);
}

// Hands the checked inner packet at p (from a known node) to the TUN, or drops it.
@inline function deliverInner(d: u32, p: u32, avail: u32): void {
  const ihl = ipv4.checkHeader(p, avail);
  if (ihl == 0) {
    drop(d, C.DROP_MALFORMED_INNER);
    return;
  }
  if (!ipv4.checksumOk(p, ihl)) {
    drop(d, C.DROP_BAD_CHECKSUM);
    return;
  }
  const total = ipv4.totalLen(p);
  store<u32>(d + L.D_OFF, p);
  store<u32>(d + L.D_LEN, total);
  store<u8>(d + L.D_CHANNEL, L.CH_TUN);
  C.count(C.TUN_TX);
  C.count(C.BYTES_DECAPSULATED, total);
}

// Packets from the raw IPIP socket: whole IPv4 packets with protocol 4.
export function decapIpipBatch(count: u32, slotCap: u32): u32 {
  for (let i: u32 = 0; i < count; i++) {
    const d = desc(i);
    const p = load<u32>(d + L.D_OFF);
    const len = load<u32>(d + L.D_LEN);
    C.count(C.IPIP_RX);
    if (len > slotCap) {
      drop(d, C.DROP_TRUNCATED);
      continue;
    }
    const ihl = ipv4.checkHeader(p, len);
    if (ihl == 0) {
      drop(d, C.DROP_MALFORMED_OUTER);
      continue;
    }
    if (!ipv4.checksumOk(p, ihl)) {
      drop(d, C.DROP_BAD_CHECKSUM);
      continue;
    }
    if (ipv4.protocol(p) != ipv4.PROTO_IPIP) {
      drop(d, C.DROP_NOT_IPIP);
      continue;
    }
    if (!nodesHas(ipv4.src(p))) {
      drop(d, C.DROP_UNKNOWN_SOURCE);
      continue;
    }
    deliverInner(d, p + ihl, ipv4.totalLen(p) - ihl);
  }
  return tally(count);
}

// Datagrams from the VXLAN UDP socket: VXLAN header, inner Ethernet, inner IPv4.
// The descriptor's address is the outer source.
export function decapVxlanBatch(count: u32, slotCap: u32): u32 {
  const hdr = vxlan.HEADER_LEN + eth.HEADER_LEN;
  for (let i: u32 = 0; i < count; i++) {
    const d = desc(i);
    const p = load<u32>(d + L.D_OFF);
    const len = load<u32>(d + L.D_LEN);
    C.count(C.VXLAN_RX);
    if (len > slotCap) {
      drop(d, C.DROP_TRUNCATED);
      continue;
    }
    if (len < hdr + ipv4.HEADER_LEN) {
      drop(d, C.DROP_MALFORMED_OUTER);
      continue;
    }
    if (!nodesHas(load<u32>(d + L.D_ADDR))) {
      drop(d, C.DROP_UNKNOWN_SOURCE);
      continue;
    }
    if (!(vxlan.flags(p) & vxlan.FLAG_I)) {
      drop(d, C.DROP_BAD_VXLAN_FLAGS);
      continue;
    }
    if (vxlan.vni(p) != vni()) {
      drop(d, C.DROP_WRONG_VNI);
      continue;
    }
    const e = p + vxlan.HEADER_LEN;
    if (!eth.macEquals(e + eth.DST, C_LOCAL_MAC)) {
      drop(d, C.DROP_WRONG_MAC);
      continue;
    }
    if (<u32>bswap<u16>(load<u16>(e + eth.ETHERTYPE)) != eth.TYPE_IPV4) {
      drop(d, C.DROP_NOT_IPV4);
      continue;
    }
    deliverInner(d, e + eth.HEADER_LEN, len - hdr);
  }
  return tally(count);
}
