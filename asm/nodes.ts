// Set of known node (underlay) addresses: encapsulated packets are accepted only
// from these. Open addressing, linear probing; JS rebuilds it whole on change.
import { NODES, NODES_CAP } from "./layout";

let size: u32 = 0;

@inline function slot(i: u32): u32 {
  return NODES + ((i & (NODES_CAP - 1)) << 2);
}
@inline function hash(a: u32): u32 {
  return (a * 0x9e3779b1) >> 16; // the top 16 bits: NODES_CAP slots
}

export function nodesClear(): void {
  memory.fill(NODES, 0, NODES_CAP << 2);
  size = 0;
}

// Adds addr (host order, not 0). Returns false when the set is full.
export function nodesAdd(addr: u32): bool {
  if (addr == 0) return false;
  for (let i = hash(addr), n: u32 = 0; n < NODES_CAP; i++, n++) {
    const v = load<u32>(slot(i));
    if (v == addr) return true;
    if (v == 0) {
      if (size >= NODES_CAP / 2) return false;
      store<u32>(slot(i), addr);
      size++;
      return true;
    }
  }
  return false;
}

export function nodesHas(addr: u32): bool {
  if (addr == 0) return false;
  for (let i = hash(addr), n: u32 = 0; n < NODES_CAP; i++, n++) {
    const v = load<u32>(slot(i));
    if (v == addr) return true;
    if (v == 0) return false;
  }
  return false;
}
