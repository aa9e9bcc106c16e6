// VXLAN tunnel endpoint MACs as Calico derives them: 0x66 then sha1(node name)[0:5].
import { createHash } from "node:crypto";
import { formatMAC } from "./addr.js";

export function vtepMAC(nodeName: string): string {
  const h = createHash("sha1").update(nodeName).digest();
  return formatMAC([0x66, h[0], h[1], h[2], h[3], h[4]]);
}
