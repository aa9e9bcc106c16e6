// Sends hand-made encapsulated packets from a lab host (tests: a host that is not a
// node tries IPIP and VXLAN toward a node):
//   node inject.js ipip  OUTER_SRC OUTER_DST INNER_SRC INNER_DST COUNT
//   node inject.js vxlan OUTER_DST DST_MAC INNER_SRC INNER_DST COUNT [VNI]
//   node inject.js echo SRC DST COUNT
//     (ICMP echo requests with any source address: a spoofing pod)
//   node inject.js icmp-unreachable FROM TO QUOTED_SRC QUOTED_DST CODE[,CODE...]
//     (ICMP destination unreachable with those codes, about an IPIP packet
//     QUOTED_SRC -> QUOTED_DST, sent to TO: what a router might say)
import { native, KIND_SOCK } from "../native/index.js";
import { parseIPv4, parseMAC } from "../dataplane/addr.js";
import { buildEcho, buildIPv4, buildVxlan, ipv4Checksum } from "../dataplane/packets.js";

const [kind, ...rest] = process.argv.slice(2);
const n = native();
const mem = new ArrayBuffer(1 << 20);
const bytes = new Uint8Array(mem);
const dv = new DataView(mem);

function sendAll(fd: number, packets: Uint8Array[], dst: number, port: number): number {
  packets.forEach((p, i) => {
    const off = 4096 + i * 2048;
    bytes.set(p, off);
    const d = i * 24; // weft_desc
    dv.setUint32(d, off, true);
    dv.setUint32(d + 4, p.length, true);
    dv.setUint32(d + 8, dst, true);
    dv.setUint16(d + 12, port, true);
    bytes[d + 14] = 1;
  });
  return n.sendBatch(fd, KIND_SOCK, mem, 0, packets.length, 1, false);
}

if (kind === "ipip") {
  const [outerSrc, outerDst, innerSrc, innerDst, count] = rest;
  const inner = buildEcho(innerSrc, innerDst, 16);
  const outer = buildIPv4({ src: outerSrc, dst: outerDst, protocol: 4, payload: inner });
  const fd = n.rawOpen(4);
  console.log(JSON.stringify({ sent: sendAll(fd, Array(Number(count)).fill(outer), parseIPv4(outerDst)!, 0) }));
} else if (kind === "vxlan") {
  const [outerDst, dstMAC, innerSrc, innerDst, count, vni] = rest;
  const inner = buildEcho(innerSrc, innerDst, 16);
  const frame = buildVxlan(Number(vni ?? 4096), parseMAC(dstMAC)!, [0x66, 1, 2, 3, 4, 5], inner);
  const fd = n.udpOpen("0.0.0.0", 0);
  console.log(JSON.stringify({ sent: sendAll(fd, Array(Number(count)).fill(frame), parseIPv4(outerDst)!, 4789) }));
} else if (kind === "echo") {
  const [src, dst, count] = rest;
  console.log(JSON.stringify({ sent: sendAll(n.rawOpen(1), Array(Number(count)).fill(buildEcho(src, dst, 16)), parseIPv4(dst)!, 0) }));
} else if (kind === "icmp-unreachable") {
  const [from, to, quotedSrc, quotedDst, codes] = rest;
  const quoted = buildIPv4({ src: quotedSrc, dst: quotedDst, protocol: 4, df: true, payload: new Uint8Array(8) });
  const packets = codes.split(",").map(Number).map((code) => {
    const icmp = new Uint8Array(8 + quoted.length);
    icmp[0] = 3;
    icmp[1] = code;
    icmp.set(quoted, 8);
    const c = ipv4Checksum(icmp, 0, icmp.length);
    icmp[2] = c >> 8;
    icmp[3] = c & 255;
    return buildIPv4({ src: from, dst: to, protocol: 1, payload: icmp });
  });
  console.log(JSON.stringify({ sent: sendAll(n.rawOpen(1), packets, parseIPv4(to)!, 0) }));
} else {
  console.error("usage: inject.js ipip SRC DST INNER_SRC INNER_DST COUNT | vxlan DST MAC INNER_SRC INNER_DST COUNT [VNI] | echo SRC DST COUNT | icmp-unreachable FROM TO QUOTED_SRC QUOTED_DST CODES");
  process.exit(2);
}
