// Node-wide settings the fast path reads on every batch, written once by JS.
import { CONFIG } from "./layout";

export const C_LOCAL_ADDR: u32 = CONFIG + 0; // u32, host order
export const C_VNI: u32 = CONFIG + 4; // u32
export const C_UNDERLAY_MTU: u32 = CONFIG + 8; // u32
export const C_IP_ID: u32 = CONFIG + 12; // u32, outer IPv4 identification counter
export const C_VXLAN_PORT: u32 = CONFIG + 16; // u32
export const C_LOCAL_MAC: u32 = CONFIG + 20; // 6 bytes
export const C_OFFLOAD: u32 = CONFIG + 28; // u32 bit set, OFFLOAD_*
export const C_VXLAN_SOCKETS: u32 = CONFIG + 32; // u32, VXLAN source ports (sockets) in use, 1-8
export const C_ICMP_SOURCE: u32 = CONFIG + 36; // u32, host order: ICMP errors' source (0: the local address)

// The TUN carries a virtio_net_hdr in front of every packet (IFF_VNET_HDR).
export const OFFLOAD_VNET: u32 = 1;
// Coalesce consecutive TCP segments of a flow into one packet for the TUN (GRO).
export const OFFLOAD_GRO: u32 = 2;

@inline export function offload(bit: u32): bool {
  return (load<u32>(C_OFFLOAD) & bit) != 0;
}

export function localAddr(): u32 {
  return load<u32>(C_LOCAL_ADDR);
}
// The source of the ICMP errors written into the TUN: the tunnel device's own address
// when it has one (reverse-path filtering, loose or strict, drops one from the node's
// address, which the kernel routes through the uplink, arriving on the tunnel), else
// the node's.
export function icmpSource(): u32 {
  const a = load<u32>(C_ICMP_SOURCE);
  return a != 0 ? a : localAddr();
}
export function vni(): u32 {
  return load<u32>(C_VNI);
}
export function underlayMtu(): u32 {
  return load<u32>(C_UNDERLAY_MTU);
}
export function vxlanPort(): u32 {
  return load<u32>(C_VXLAN_PORT);
}
export function nextIpId(): u16 {
  const id = load<u32>(C_IP_ID) + 1;
  store<u32>(C_IP_ID, id);
  return <u16>id;
}
export function vxlanSockets(): u32 {
  const n = load<u32>(C_VXLAN_SOCKETS);
  return n == 0 ? 1 : n;
}
