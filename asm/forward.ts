// Batch entry points: one call per batch. The native side fills the input
// descriptors (DESC_IN) with what it received; each entry point writes output
// descriptors (DESC_OUT) with what to send where, and returns how many. Outputs
// point into the receive slots (headers written in the headroom) or into the
// per-batch arena (segments of a TSO super-packet, coalesced TCP for the TUN).
import * as L from "./layout";
import * as C from "./counters";
import { icmpSource, localAddr, nextIpId, offload, underlayMtu, vni, vxlanPort, vxlanSockets, C_LOCAL_MAC, OFFLOAD_GRO, OFFLOAD_VNET } from "./config";
import { lpmLookup } from "./lpm";
import { nodesHas } from "./nodes";
import { routeAt, R_ENCAP, R_NEXT_HOP, R_PATH_MTU, R_VTEP_MAC } from "./routes";
import * as ipv4 from "./wire/ipv4";
import * as icmp from "./wire/icmp";
import * as eth from "./wire/ethernet";
import * as vxlan from "./wire/vxlan";
import * as tcp from "./wire/tcp";
import * as vnet from "./wire/vnet";
import { checksum, fold16, loadBE16, loadBE32, storeBE16, storeBE32, sum16, sum16Copy } from "./wire/checksum";

// Room in front of every received packet for the headers written there.
export const HEADROOM: u32 = 64;
export const IPIP_OVERHEAD: u32 = ipv4.HEADER_LEN;
export const VXLAN_OVERHEAD: u32 = ipv4.HEADER_LEN + 8 + vxlan.HEADER_LEN + eth.HEADER_LEN; // 50
const MAX_IP: u32 = 65535;

// --- outputs -----------------------------------------------------------------

let outCount: u32 = 0;
let arenaTop: u32 = 0;

function resetOutputs(): void {
  outCount = 0;
  arenaTop = L.ARENA;
  memory.fill(L.TALLY, 0, L.CHANNELS << 2);
}

// Space in the arena, 64-byte aligned; 0 when the batch has used it all.
function arenaAlloc(size: u32): u32 {
  const p = arenaTop;
  const next = (p + size + 63) & ~63;
  if (next > L.ARENA + L.ARENA_BYTES) return 0;
  arenaTop = next;
  return p;
}

// len is the whole packet's; with tailLen, its last tailLen bytes are at tail.
function emit(off: u32, len: u32, addr: u32, port: u32, channel: u8, tail: u32 = 0, tailLen: u32 = 0): void {
  if (outCount >= L.MAX_OUT) {
    C.count(C.DROP_OUT_OF_SPACE);
    return;
  }
  const d = L.DESC_OUT + outCount * L.DESC_SIZE;
  store<u32>(d + L.D_OFF, off);
  store<u32>(d + L.D_LEN, len);
  store<u32>(d + L.D_ADDR, addr);
  store<u16>(d + L.D_PORT, <u16>port);
  store<u8>(d + L.D_CHANNEL, channel);
  store<u8>(d + L.D_REASON, 0);
  store<u16>(d + L.D_GSO, <u16>tailLen);
  store<u16>(d + L.D_FLAGS, 0);
  store<u32>(d + L.D_TAIL, tailLen ? tail : 0);
  outCount++;
  const t = L.TALLY + ((<u32>channel - 1) << 2);
  store<u32>(t, load<u32>(t) + 1);
}

// A packet (IPv4 at p, len bytes) for the TUN: with a virtio header in front when
// the TUN has them. p - 10 is always inside the headroom or the consumed outer headers.
function emitToTun(p: u32, len: u32): void {
  if (offload(OFFLOAD_VNET)) {
    vnet.emitPlain(p - vnet.LEN);
    emit(p - vnet.LEN, len + vnet.LEN, 0, 0, L.CH_TUN);
  } else {
    emit(p, len, 0, 0, L.CH_TUN);
  }
}

@inline function inDesc(i: u32): u32 {
  return L.DESC_IN + i * L.DESC_SIZE;
}

// --- encapsulation (TUN -> network) ---------------------------------------------

// Answers the checked packet at p with ICMP destination unreachable into the TUN,
// when one may be sent (otherwise counts the drop).
function answerUnreachable(p: u32, ihl: u32, len: u32, code: u8, mtu: u32, dropReason: u32): void {
  if (!icmp.mayAnswer(p, ihl, len)) {
    C.count(dropReason);
    return;
  }
  const n = icmp.emitUnreachable(p, ihl, code, mtu, icmpSource());
  emitToTun(p - icmp.HEADER_LEN - ipv4.HEADER_LEN, n);
  C.count(code == icmp.CODE_FRAG_NEEDED ? C.ICMP_FRAG_NEEDED_SENT : C.ICMP_UNREACHABLE_SENT);
}

// A hash of the inner packet's flow: addresses, protocol and, for TCP and UDP that
// are not fragments, ports. Every segment of a flow gets the same value.
function flowHash(p: u32): u32 {
  let h = load<u32>(p + ipv4.SRC) * 0x9e3779b1 ^ load<u32>(p + ipv4.DST);
  const proto = ipv4.protocol(p);
  h = (h ^ proto) * 0x85ebca6b;
  if ((proto == 6 || proto == 17) && !(ipv4.flagsFrag(p) & (ipv4.FLAG_MF | ipv4.FRAG_OFFSET_MASK))) {
    h = (h ^ load<u32>(p + ((<u32>load<u8>(p) & 0xf) << 2))) * 0xc2b2ae35;
  }
  return h ^ (h >> 16);
}

// Writes the outer headers for route r in front of the inner packet at p (total bytes,
// of which the last tailLen are at tail) and emits it. The headroom in front of p must
// hold VXLAN_OVERHEAD - 28 bytes.
function encapsulate(p: u32, total: u32, r: u32, tail: u32 = 0, tailLen: u32 = 0): void {
  const encap = load<u8>(r + R_ENCAP);
  const nextHop = load<u32>(r + R_NEXT_HOP);
  if (encap == L.ENCAP_IPIP) {
    const o = p - ipv4.HEADER_LEN;
    // Outer DF follows the inner packet, as the kernel's ipip tunnel does with pmtudisc.
    ipv4.emit(o, load<u8>(p + ipv4.TOS), total + ipv4.HEADER_LEN, nextIpId(), ipv4.flagsFrag(p) & ipv4.FLAG_DF, 64, ipv4.PROTO_IPIP, localAddr(), nextHop);
    emit(o, total + ipv4.HEADER_LEN, nextHop, 0, L.CH_IPIP, tail, tailLen);
    C.count(C.IPIP_TX);
  } else if (encap == L.ENCAP_VXLAN) {
    const e = p - eth.HEADER_LEN;
    const v = e - vxlan.HEADER_LEN;
    eth.copyMac(e + eth.DST, r + R_VTEP_MAC);
    eth.copyMac(e + eth.SRC, C_LOCAL_MAC);
    storeBE16(e + eth.ETHERTYPE, eth.TYPE_IPV4);
    vxlan.emit(v, vni());
    // One socket (source port) per flow, so ECMP in the underlay can spread flows.
    const n = vxlanSockets();
    const ch = n == 1 ? L.CH_VXLAN : L.CH_VXLAN + <u8>(flowHash(p) % n);
    emit(v, total + vxlan.HEADER_LEN + eth.HEADER_LEN, nextHop, vxlanPort(), ch, tail, tailLen);
    C.count(C.VXLAN_TX);
  } else {
    // A direct route is the kernel's: it never points into the TUN.
    C.count(C.DROP_ROUTE_NOT_ENCAPSULATED);
    return;
  }
  C.count(C.BYTES_ENCAPSULATED, total);
}

// Pseudo-header sum (RFC 9293 3.1) of the IPv4 packet at p for an L4 length, in the
// memory-order domain of sum16.
@inline function pseudoSum(p: u32, proto: u32, l4len: u32): u32 {
  return sum16(p + ipv4.SRC, 8, (<u32>bswap<u16>(<u16>proto)) + <u32>bswap<u16>(<u16>l4len));
}

// Finishes a partial checksum (virtio NEEDS_CSUM): the field at start+offset holds the
// pseudo-header sum; the checksum covers [start, total).
function completeChecksum(p: u32, total: u32, start: u32, offset: u32): bool {
  if (start >= total || start + offset + 2 > total) return false;
  const field = p + start + offset;
  let c = checksum(p + start, total - start);
  if (c == 0 && ipv4.protocol(p) == ipv4.PROTO_UDP) c = 0xffff;
  store<u16>(field, c);
  C.count(C.CHECKSUMS_COMPLETED);
  return true;
}

// A copy of the first len bytes of the packet at p (its headers) in the arena, with
// headroom in front for the outer headers: the headers of one piece of a packet split
// in wasm, whose payload is sent from where it lies. 0 when the batch's arena is used up
// (counted).
@inline function headerCopy(p: u32, len: u32): u32 {
  const q = arenaAlloc(HEADROOM + len);
  if (q == 0) {
    C.count(C.DROP_OUT_OF_SPACE);
    return 0;
  }
  memory.copy(q + HEADROOM, p, len);
  return q + HEADROOM;
}

// Splits a TCP super-packet (IPv4 at p, checked header ihl) into segments of mss
// payload bytes, each with its own IP id, length, sequence number, flags and
// checksums, and encapsulates each for route r (r 0: writes each to the TUN). Only the
// headers are written (in the arena); each segment's payload is sent from where it
// lies, summed but not copied.
function segmentTcp(p: u32, ihl: u32, total: u32, mss: u32, r: u32): void {
  const t = p + ihl;
  if (ipv4.protocol(p) != 6 || total < ihl + tcp.HEADER_LEN || mss == 0) {
    C.count(C.DROP_BAD_OFFLOAD_HEADER);
    return;
  }
  const thl = tcp.headerLen(t);
  const hdr = ihl + thl;
  if (thl < tcp.HEADER_LEN || hdr > total) {
    C.count(C.DROP_BAD_OFFLOAD_HEADER);
    return;
  }
  const payload = total - hdr;
  const id0 = loadBE16(p + ipv4.IDENT);
  const seq0 = loadBE32(t + tcp.SEQ);
  const flags0 = load<u8>(t + tcp.FLAGS);
  if (r) C.count(C.TSO_PACKETS_SPLIT);
  let k: u32 = 0;
  for (let off: u32 = 0; off < payload || (payload == 0 && k == 0); off += mss, k++) {
    const pay = min(mss, payload - off);
    const segLen = hdr + pay;
    const s = headerCopy(p, hdr);
    if (s == 0) return;
    const tail = p + hdr + off;
    const paySum = sum16(tail, pay);
    storeBE16(s + ipv4.TOTAL_LEN, segLen);
    storeBE16(s + ipv4.IDENT, (id0 + k) & 0xffff);
    store<u16>(s + ipv4.CHECKSUM, 0);
    store<u16>(s + ipv4.CHECKSUM, checksum(s, ihl));
    const st = s + ihl;
    storeBE32(st + tcp.SEQ, seq0 + off);
    let f = flags0;
    if (k > 0) f &= ~tcp.CWR;
    if (off + pay < payload) f &= ~(tcp.FIN | tcp.PSH);
    store<u8>(st + tcp.FLAGS, f);
    store<u16>(st + tcp.CHECKSUM, 0);
    store<u16>(st + tcp.CHECKSUM, <u16>~sum16(st, thl, pseudoSum(s, 6, thl + pay) + paySum));
    if (r) {
      C.count(C.TSO_SEGMENTS);
      encapsulate(s, segLen, r, tail, pay);
    } else {
      C.count(C.TUN_TX);
      emit(s, segLen, 0, 0, L.CH_TUN, tail, pay);
    }
    if (payload == 0) break;
  }
}

// Splits the IPv4 packet at p (no DF, header ihl) into fragments of at most maxLen
// bytes (RFC 791: payload in multiples of 8, the same ID, offsets and MF following the
// packet's own, so a fragment may be fragmented again) and encapsulates each for route
// r. Only the headers are written (in the arena); each payload is sent from where it
// lies. A header with options is not split (their copy rules): dropped, counted.
function fragmentIpv4(p: u32, ihl: u32, total: u32, maxLen: u32, r: u32): void {
  const chunk = ((maxLen - ihl) >> 3) << 3;
  if (ihl != ipv4.HEADER_LEN || chunk == 0) {
    C.count(C.DROP_TOO_BIG_NO_DF);
    return;
  }
  const ff = ipv4.flagsFrag(p);
  const offset0 = ff & ipv4.FRAG_OFFSET_MASK;
  const payload = total - ihl;
  C.count(C.PACKETS_FRAGMENTED);
  for (let off: u32 = 0; off < payload; off += chunk) {
    const pay = min(chunk, payload - off);
    const last = off + pay >= payload;
    const f = headerCopy(p, ihl);
    if (f == 0) return;
    storeBE16(f + ipv4.TOTAL_LEN, ihl + pay);
    storeBE16(f + ipv4.FLAGS_FRAG, (last ? ff & ipv4.FLAG_MF : ipv4.FLAG_MF) | (offset0 + (off >> 3)));
    store<u16>(f + ipv4.CHECKSUM, 0);
    store<u16>(f + ipv4.CHECKSUM, checksum(f, ihl));
    C.count(C.FRAGMENTS_SENT);
    encapsulate(f, ihl + pay, r, p + ihl + off, pay);
  }
}

// Packets read from the TUN (pod traffic leaving this host): route and encapsulate.
// Returns the number of output descriptors.
export function encapBatch(count: u32): u32 {
  resetOutputs();
  const mtuBase = underlayMtu();
  const hasVnet = offload(OFFLOAD_VNET);
  for (let i: u32 = 0; i < count; i++) {
    const d = inDesc(i);
    let p = load<u32>(d + L.D_OFF);
    let len = load<u32>(d + L.D_LEN);
    C.count(C.TUN_RX);
    let gsoType: u8 = 0;
    let gsoSize: u32 = 0;
    let needsCsum = false;
    let csumStart: u32 = 0;
    let csumOffset: u32 = 0;
    if (hasVnet) {
      if (len < vnet.LEN) {
        C.count(C.DROP_BAD_OFFLOAD_HEADER);
        continue;
      }
      gsoType = load<u8>(p + vnet.GSO_TYPE) & ~vnet.GSO_ECN;
      gsoSize = <u32>load<u16>(p + vnet.GSO_SIZE);
      needsCsum = (load<u8>(p + vnet.FLAGS) & vnet.F_NEEDS_CSUM) != 0;
      csumStart = <u32>load<u16>(p + vnet.CSUM_START);
      csumOffset = <u32>load<u16>(p + vnet.CSUM_OFFSET);
      p += vnet.LEN;
      len -= vnet.LEN;
    }
    const ihl = ipv4.checkHeader(p, len);
    if (ihl == 0) {
      // IPv6 from the TUN is not ours to carry (yet); anything else is malformed.
      C.count(len > 0 && load<u8>(p) >> 4 == 6 ? C.DROP_NOT_IPV4 : C.DROP_MALFORMED_INNER);
      continue;
    }
    const total = ipv4.totalLen(p);
    const route = lpmLookup(ipv4.dst(p));
    if (route == 0) {
      answerUnreachable(p, ihl, total, icmp.CODE_NET_UNREACHABLE, 0, C.DROP_NO_ROUTE);
      continue;
    }
    const r = routeAt(route);
    const overhead = load<u8>(r + R_ENCAP) == L.ENCAP_VXLAN ? VXLAN_OVERHEAD : IPIP_OVERHEAD;
    // A smaller path MTU toward this next hop (learned from ICMP) wins over the uplink's.
    const pathMtu = <u32>load<u16>(r + R_PATH_MTU);
    const mtu = pathMtu != 0 && pathMtu < mtuBase ? pathMtu : mtuBase;
    if (gsoType == vnet.GSO_TCPV4) {
      // Each segment must fit the tunnel: the super-packet itself never goes out whole.
      const t = p + ihl;
      const seg = total >= ihl + tcp.HEADER_LEN ? ihl + tcp.headerLen(t) + gsoSize : total;
      if (seg + overhead > mtu) {
        answerUnreachable(p, ihl, total, icmp.CODE_FRAG_NEEDED, mtu - overhead, C.DROP_TOO_BIG_NO_DF);
        continue;
      }
      segmentTcp(p, ihl, total, gsoSize, r);
      continue;
    }
    if (gsoType != vnet.GSO_NONE) {
      C.count(C.DROP_BAD_OFFLOAD_HEADER);
      continue;
    }
    const tooBig = total + overhead > mtu;
    if (tooBig && ipv4.flagsFrag(p) & ipv4.FLAG_DF) {
      answerUnreachable(p, ihl, total, icmp.CODE_FRAG_NEEDED, mtu - overhead, C.DROP_TOO_BIG_NO_DF);
      continue;
    }
    if (needsCsum && !completeChecksum(p, total, csumStart, csumOffset)) {
      C.count(C.DROP_BAD_OFFLOAD_HEADER);
      continue;
    }
    // Without DF the sender allows fragmentation (a datagram its own kernel already
    // fragmented to the pod's MTU, when a router on the way takes less): fragments
    // that fit, as a kernel tunnel would let the packet be fragmented.
    if (tooBig) fragmentIpv4(p, ihl, total, mtu - overhead, r);
    else encapsulate(p, total, r);
  }
  return outCount;
}

// --- decapsulation (network -> TUN), with TCP coalescing --------------------------

// The open coalesced packet: consecutive in-order TCP segments of one flow, built in
// the arena (a virtio header's room in front) while their checksums are verified:
// each payload is copied and summed in one pass.
let gOpen = false;
let gIp: u32 = 0; // its IPv4 header, in the arena
let gLen: u32 = 0; // total IPv4 length so far
let gHdr: u32 = 0; // IP + TCP header bytes
let gMss: u32 = 0; // payload bytes of the first segment
let gNextSeq: u32 = 0;
let gSegs: u32 = 0;

function groFlush(): void {
  if (!gOpen) return;
  gOpen = false;
  // The open packet is the arena's last allocation: give back what it did not use.
  arenaTop = (gIp + gLen + 63) & ~63;
  if (gSegs == 1) {
    emitToTun(gIp, gLen);
    return;
  }
  const ihl = (<u32>load<u8>(gIp) & 0xf) << 2;
  storeBE16(gIp + ipv4.TOTAL_LEN, gLen);
  store<u16>(gIp + ipv4.CHECKSUM, 0);
  store<u16>(gIp + ipv4.CHECKSUM, checksum(gIp, ihl));
  // NEEDS_CSUM: the field holds the pseudo-header sum, the kernel trusts the rest
  // (every merged segment's checksum was verified on the way in).
  const t = gIp + ihl;
  store<u16>(t + tcp.CHECKSUM, <u16>fold16(pseudoSum(gIp, 6, gLen - ihl)));
  vnet.emitTcp4Gso(gIp - vnet.LEN, gHdr, gMss, ihl);
  emit(gIp - vnet.LEN, gLen + vnet.LEN, 0, 0, L.CH_TUN);
  C.count(C.GRO_PACKETS_WRITTEN);
  C.count(C.GRO_SEGMENTS_MERGED, gSegs);
}

// Whether the checked TCP segment at p (ihl 20) continues the open packet.
function continuesOpen(p: u32, thl: u32, pay: u32): bool {
  if (!gOpen) return false;
  const g = gIp;
  const gt = g + 20;
  const t = p + 20;
  if (thl + 20 != gHdr) return false;
  if (load<u64>(p + ipv4.SRC) != load<u64>(g + ipv4.SRC)) return false; // src and dst
  if (load<u8>(p + ipv4.TOS) != load<u8>(g + ipv4.TOS) || load<u8>(p + ipv4.TTL) != load<u8>(g + ipv4.TTL)) return false;
  if ((ipv4.flagsFrag(p) & ipv4.FLAG_DF) != (ipv4.flagsFrag(g) & ipv4.FLAG_DF)) return false;
  if (load<u32>(t) != load<u32>(gt)) return false; // ports
  if (loadBE32(t + tcp.SEQ) != gNextSeq) return false;
  if (load<u32>(t + tcp.ACK) != load<u32>(gt + tcp.ACK)) return false;
  if (load<u16>(t + tcp.WINDOW) != load<u16>(gt + tcp.WINDOW)) return false;
  for (let i: u32 = tcp.HEADER_LEN; i + 4 <= thl; i += 4) if (load<u32>(t + i) != load<u32>(gt + i)) return false;
  if (pay > gMss || gLen + pay > MAX_IP) return false;
  return true;
}

// Hands a checked inner packet to the TUN, coalescing bulk TCP when enabled. A packet
// that is not merged goes out as it came (without NEEDS_CSUM, so the kernel checks it).
function toTun(p: u32, total: u32, ihl: u32): void {
  C.count(C.TUN_TX);
  C.count(C.BYTES_DECAPSULATED, total);
  if (!offload(OFFLOAD_GRO) || ihl != 20 || ipv4.protocol(p) != 6 || ipv4.flagsFrag(p) & (ipv4.FLAG_MF | ipv4.FRAG_OFFSET_MASK) || total < 20 + tcp.HEADER_LEN) {
    groFlush();
    emitToTun(p, total);
    return;
  }
  const t = p + 20;
  const thl = tcp.headerLen(t);
  const flags = load<u8>(t + tcp.FLAGS);
  const pay = thl <= total - 20 ? total - 20 - thl : 0;
  // Only plain data segments (ACK, maybe PSH) are merged, and only with a good checksum.
  if (thl < tcp.HEADER_LEN || thl + 20 > total || pay == 0 || (flags & ~(tcp.ACK_FLAG | tcp.PSH)) != 0 || !(flags & tcp.ACK_FLAG)) {
    groFlush();
    emitToTun(p, total);
    return;
  }
  const headSum = sum16(t, thl, pseudoSum(p, 6, total - 20));
  if (continuesOpen(p, thl, pay)) {
    // Copy behind the open packet; it only grows if the checksum holds.
    if (fold16(headSum + sum16Copy(gIp + gLen, t + thl, pay)) != 0xffff) {
      groFlush();
      emitToTun(p, total);
      return;
    }
    gLen += pay;
    gNextSeq += pay;
    gSegs++;
    if (flags & tcp.PSH) store<u8>(gIp + 20 + tcp.FLAGS, load<u8>(gIp + 20 + tcp.FLAGS) | tcp.PSH);
    if (flags & tcp.PSH || pay < gMss) groFlush();
    return;
  }
  groFlush();
  const a = arenaAlloc(vnet.LEN + MAX_IP);
  if (a == 0) {
    emitToTun(p, total);
    return;
  }
  const g = a + vnet.LEN;
  memory.copy(g, p, 20 + thl);
  if (fold16(headSum + sum16Copy(g + 20 + thl, t + thl, pay)) != 0xffff) {
    arenaTop = a;
    emitToTun(p, total);
    return;
  }
  gOpen = true;
  gIp = g;
  gLen = total;
  gHdr = 20 + thl;
  gMss = pay;
  gNextSeq = loadBE32(t + tcp.SEQ) + pay;
  gSegs = 1;
  if (flags & tcp.PSH) groFlush();
}

// An inner packet longer than the tunnel carries (maxInner): TCP segments this host's
// NIC merged (GRO) before the raw IPIP socket saw them, whose checksum field then holds
// the pseudo-header sum (the kernel checked each segment), or a whole packet from a
// sender with a larger MTU. Either goes to the TUN as a super-packet the kernel splits
// again at the tunnel's size (without virtio headers: split here); anything else is
// too big for the pods' side and dropped.
function superToTun(p: u32, total: u32, ihl: u32, maxInner: u32): void {
  groFlush();
  const t = p + ihl;
  const thl = total >= ihl + tcp.HEADER_LEN ? tcp.headerLen(t) : 0;
  if (ipv4.protocol(p) != 6 || ipv4.flagsFrag(p) & (ipv4.FLAG_MF | ipv4.FRAG_OFFSET_MASK) || thl < tcp.HEADER_LEN || ihl + thl >= total || ihl + thl >= maxInner) {
    C.count(C.DROP_TOO_BIG_NO_DF);
    return;
  }
  const pseudo = <u16>fold16(pseudoSum(p, 6, total - ihl));
  if (load<u16>(t + tcp.CHECKSUM) != pseudo) {
    // Not GRO's partial form: the whole checksum must hold.
    if (fold16(sum16(t, total - ihl, pseudoSum(p, 6, total - ihl))) != 0xffff) {
      C.count(C.DROP_BAD_CHECKSUM);
      return;
    }
    store<u16>(t + tcp.CHECKSUM, pseudo);
  }
  C.count(C.SUPER_PACKETS_RECEIVED);
  C.count(C.BYTES_DECAPSULATED, total);
  const mss = maxInner - ihl - thl;
  if (offload(OFFLOAD_VNET)) {
    C.count(C.TUN_TX);
    vnet.emitTcp4Gso(p - vnet.LEN, ihl + thl, mss, ihl);
    emit(p - vnet.LEN, total + vnet.LEN, 0, 0, L.CH_TUN);
    return;
  }
  segmentTcp(p, ihl, total, mss, 0);
}

// Checks the inner packet at p (avail bytes, from a known node) and passes it on;
// maxInner is the longest inner packet the tunnel carries.
function deliverInner(p: u32, avail: u32, maxInner: u32): void {
  const ihl = ipv4.checkHeader(p, avail);
  if (ihl == 0) {
    C.count(C.DROP_MALFORMED_INNER);
    return;
  }
  if (!ipv4.checksumOk(p, ihl)) {
    C.count(C.DROP_BAD_CHECKSUM);
    return;
  }
  const total = ipv4.totalLen(p);
  if (total > maxInner && maxInner > 0) superToTun(p, total, ihl, maxInner);
  else toTun(p, total, ihl);
}

// Packets from the raw IPIP socket: whole IPv4 packets with protocol 4.
export function decapIpipBatch(count: u32, slotCap: u32): u32 {
  resetOutputs();
  for (let i: u32 = 0; i < count; i++) {
    const d = inDesc(i);
    const p = load<u32>(d + L.D_OFF);
    const len = load<u32>(d + L.D_LEN);
    C.count(C.IPIP_RX);
    if (len > slotCap) {
      C.count(C.DROP_TRUNCATED);
      continue;
    }
    const ihl = ipv4.checkHeader(p, len);
    if (ihl == 0) {
      C.count(C.DROP_MALFORMED_OUTER);
      continue;
    }
    if (!ipv4.checksumOk(p, ihl)) {
      C.count(C.DROP_BAD_CHECKSUM);
      continue;
    }
    if (ipv4.protocol(p) != ipv4.PROTO_IPIP) {
      C.count(C.DROP_NOT_IPIP);
      continue;
    }
    if (!nodesHas(ipv4.src(p))) {
      C.count(C.DROP_UNKNOWN_SOURCE);
      continue;
    }
    deliverInner(p + ihl, ipv4.totalLen(p) - ihl, underlayMtu() - IPIP_OVERHEAD);
  }
  groFlush();
  return outCount;
}

// One VXLAN datagram (payload at p, len bytes) from source addr.
function decapVxlanOne(p: u32, len: u32, from: u32): void {
  const hdr = vxlan.HEADER_LEN + eth.HEADER_LEN;
  C.count(C.VXLAN_RX);
  if (len < hdr + ipv4.HEADER_LEN) {
    C.count(C.DROP_MALFORMED_OUTER);
    return;
  }
  if (!nodesHas(from)) {
    C.count(C.DROP_UNKNOWN_SOURCE);
    return;
  }
  if (!(vxlan.flags(p) & vxlan.FLAG_I)) {
    C.count(C.DROP_BAD_VXLAN_FLAGS);
    return;
  }
  if (vxlan.vni(p) != vni()) {
    C.count(C.DROP_WRONG_VNI);
    return;
  }
  const e = p + vxlan.HEADER_LEN;
  if (!eth.macEquals(e + eth.DST, C_LOCAL_MAC)) {
    C.count(C.DROP_WRONG_MAC);
    return;
  }
  if (<u32>bswap<u16>(load<u16>(e + eth.ETHERTYPE)) != eth.TYPE_IPV4) {
    C.count(C.DROP_NOT_IPV4);
    return;
  }
  deliverInner(e + eth.HEADER_LEN, len - hdr, underlayMtu() - VXLAN_OVERHEAD);
}

// Datagrams from the VXLAN UDP socket; with UDP GRO a slot holds several datagrams
// of the descriptor's gso size (the last may be shorter). The address is the source.
export function decapVxlanBatch(count: u32, slotCap: u32): u32 {
  resetOutputs();
  for (let i: u32 = 0; i < count; i++) {
    const d = inDesc(i);
    const p = load<u32>(d + L.D_OFF);
    const len = load<u32>(d + L.D_LEN);
    const from = load<u32>(d + L.D_ADDR);
    if (len > slotCap) {
      C.count(C.VXLAN_RX);
      C.count(C.DROP_TRUNCATED);
      continue;
    }
    const gso = <u32>load<u16>(d + L.D_GSO);
    if (gso == 0 || gso >= len) {
      decapVxlanOne(p, len, from);
      continue;
    }
    for (let off: u32 = 0; off < len; off += gso) decapVxlanOne(p + off, min(gso, len - off), from);
  }
  groFlush();
  return outCount;
}
