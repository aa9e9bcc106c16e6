// Route records the LPM points at: where a remote block lives and how to reach it.
import { ROUTES, ROUTE_CAP, ROUTE_SIZE } from "./layout";

export const R_NEXT_HOP: u32 = 0; // u32 host order: the remote node's underlay address
export const R_ENCAP: u32 = 4; // u8: ENCAP_*
export const R_VTEP_MAC: u32 = 8; // 6 bytes: the remote VTEP MAC (VXLAN)
export const R_PATH_MTU: u32 = 14; // u16: the underlay MTU toward the next hop when a router on the way has a smaller one (0: the uplink's)

@inline export function routeAt(index: u32): u32 {
  return ROUTES + index * ROUTE_SIZE;
}

// Writes record index (1..ROUTE_CAP-1). The MAC is passed as two words: hi = first 2 bytes.
export function routeSet(index: u32, nextHop: u32, encap: u8, macHi: u32, macLo: u32, pathMtu: u32): bool {
  if (index == 0 || index >= ROUTE_CAP) return false;
  const r = routeAt(index);
  store<u32>(r + R_NEXT_HOP, nextHop);
  store<u8>(r + R_ENCAP, encap);
  store<u8>(r + R_VTEP_MAC + 0, <u8>(macHi >> 8));
  store<u8>(r + R_VTEP_MAC + 1, <u8>macHi);
  store<u8>(r + R_VTEP_MAC + 2, <u8>(macLo >> 24));
  store<u8>(r + R_VTEP_MAC + 3, <u8>(macLo >> 16));
  store<u8>(r + R_VTEP_MAC + 4, <u8>(macLo >> 8));
  store<u8>(r + R_VTEP_MAC + 5, <u8>macLo);
  store<u16>(r + R_PATH_MTU, <u16>min(pathMtu, 65535));
  return true;
}
