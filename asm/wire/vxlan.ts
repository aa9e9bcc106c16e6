// VXLAN header (RFC 7348): flags (I bit), reserved, 24-bit VNI, reserved.
import { loadBE32, storeBE32 } from "./checksum";

export const FLAGS: u32 = 0;
export const VNI: u32 = 4; // upper 24 bits of this word
export const HEADER_LEN: u32 = 8;
export const FLAG_I: u8 = 0x08;

@inline export function flags(p: u32): u8 { return load<u8>(p + FLAGS); }
@inline export function vni(p: u32): u32 { return loadBE32(p + VNI) >> 8; }

export function emit(p: u32, id: u32): void {
  storeBE32(p + FLAGS, <u32>FLAG_I << 24);
  storeBE32(p + VNI, id << 8);
}
