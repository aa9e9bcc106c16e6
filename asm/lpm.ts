// Longest-prefix match over IPv4 with strides 16-8-8: at most three loads per lookup.
// Entries are u32: 0 = no route; a leaf is (prefixLen << 24) | routeIndex (index >= 1);
// CHILD | node is a pointer to a 256-entry node for the next 8 bits. Leaves are
// pushed down into child nodes, and each keeps the length of the prefix that set it,
// so insert and delete are incremental: a prefix only overwrites entries whose
// prefix is not longer than its own.
import { LPM_NODE_CAP, LPM_NODES, LPM_ROOT } from "./layout";

const CHILD: u32 = 0x80000000;
const INDEX_MASK: u32 = 0x00ffffff;

let nodesUsed: u32 = 0; // high-water mark of node indexes handed out
let freeHead: u32 = 0; // free list of nodes (index + 1; 0 = empty), linked through entry 0
let nodesLive: u32 = 0;

@inline function nodeAt(index: u32): u32 {
  return LPM_NODES + (index << 10);
}

@inline export function leaf(len: u32, route: u32): u32 {
  return route == 0 ? 0 : (len << 24) | route;
}
@inline function leafLen(e: u32): u32 {
  return (e >> 24) & 0x3f;
}

export function lpmReset(): void {
  memory.fill(LPM_ROOT, 0, 65536 << 2);
  nodesUsed = 0;
  freeHead = 0;
  nodesLive = 0;
}

export function lpmNodesLive(): u32 {
  return nodesLive;
}

function allocNode(fillWith: u32): i32 {
  let index: u32;
  if (freeHead != 0) {
    index = freeHead - 1;
    freeHead = load<u32>(nodeAt(index));
  } else {
    if (nodesUsed >= LPM_NODE_CAP) return -1;
    index = nodesUsed++;
  }
  const base = nodeAt(index);
  for (let i: u32 = 0; i < 256; i++) store<u32>(base + (i << 2), fillWith);
  nodesLive++;
  return <i32>index;
}

function freeNode(index: u32): void {
  store<u32>(nodeAt(index), freeHead);
  freeHead = index + 1;
  nodesLive--;
}

// Applies a prefix of length len with value v (a leaf, or 0 when deleting with no
// cover) to the entry at p: child nodes are visited, leaves are replaced when the
// rule says so. Insert (del = false): replace leaves no longer than len.
// Delete: replace leaves set by exactly this prefix (length len).
function apply(p: u32, len: u32, v: u32, del: bool): void {
  const e = load<u32>(p);
  if (e & CHILD) {
    const base = nodeAt(e & INDEX_MASK);
    for (let i: u32 = 0; i < 256; i++) apply(base + (i << 2), len, v, del);
    return;
  }
  if (del ? e != 0 && leafLen(e) == len : e == 0 || leafLen(e) <= len) store<u32>(p, v);
}

// Collapses the child behind entry p when all its entries are the same leaf.
function collapse(p: u32): void {
  if (p == 0) return;
  const e = load<u32>(p);
  if (!(e & CHILD)) return;
  const index = e & INDEX_MASK;
  const base = nodeAt(index);
  const first = load<u32>(base);
  if (first & CHILD) return;
  for (let i: u32 = 1; i < 256; i++) if (load<u32>(base + (i << 2)) != first) return;
  store<u32>(p, first);
  freeNode(index);
}

// Entry pointer for the node at level (1 or 2) holding addr, creating nodes on the
// way when create is set. Returns 0 when the path is missing or memory is exhausted.
function descend(addr: u32, level: u32, create: bool): u32 {
  let p = LPM_ROOT + ((addr >> 16) << 2);
  for (let l: u32 = 1; l <= level; l++) {
    let e = load<u32>(p);
    if (!(e & CHILD)) {
      if (!create) return 0;
      const n = allocNode(e);
      if (n < 0) return 0;
      e = CHILD | <u32>n;
      store<u32>(p, e);
    }
    const shift: u32 = l == 1 ? 8 : 0;
    p = nodeAt(e & INDEX_MASK) + (((addr >> shift) & 0xff) << 2);
  }
  return p;
}

// How many entries at its level a prefix of length len covers.
function span(len: u32): u32 {
  if (len <= 16) return 1 << (16 - len);
  if (len <= 24) return 1 << (24 - len);
  return 1 << (32 - len);
}

@inline function levelOf(len: u32): u32 {
  return len <= 16 ? 0 : len <= 24 ? 1 : 2;
}

// Inserts or replaces prefix/len -> route (route >= 1). Returns false when the
// table is out of nodes (nothing changed in that case for lookups outside the prefix).
export function lpmInsert(prefix: u32, len: u32, route: u32): bool {
  if (len > 32 || route == 0 || route > INDEX_MASK) return false;
  const masked: u32 = len == 0 ? 0 : prefix & (<u32>0xffffffff << (32 - len));
  const first = descend(masked, levelOf(len), true);
  if (first == 0) return false;
  const v = leaf(len, route);
  const n = span(len);
  for (let i: u32 = 0; i < n; i++) apply(first + (i << 2), len, v, false);
  return true;
}

// Deletes prefix/len; cover is the leaf of the longest remaining prefix that covers
// it (leaf(coverLen, coverRoute), or 0), which the caller keeps in its prefix set.
export function lpmDelete(prefix: u32, len: u32, cover: u32): void {
  if (len > 32) return;
  const masked: u32 = len == 0 ? 0 : prefix & (<u32>0xffffffff << (32 - len));
  const level = levelOf(len);
  const first = descend(masked, level, false);
  if (first == 0) return;
  const n = span(len);
  for (let i: u32 = 0; i < n; i++) apply(first + (i << 2), len, cover, true);
  // Give back nodes that no longer hold anything finer than their parent entry,
  // deepest first.
  const root = LPM_ROOT + ((masked >> 16) << 2);
  if (level == 2) {
    collapse(descend(masked, 1, false));
    collapse(root);
  } else if (level == 1) {
    for (let i: u32 = 0; i < n; i++) collapse(first + (i << 2));
    collapse(root);
  } else {
    for (let i: u32 = 0; i < n; i++) {
      const p = root + (i << 2);
      const e = load<u32>(p);
      if (!(e & CHILD)) continue;
      const base = nodeAt(e & INDEX_MASK);
      for (let j: u32 = 0; j < 256; j++) collapse(base + (j << 2));
      collapse(p);
    }
  }
}

// Route index for addr, 0 when no prefix covers it.
@inline
export function lpmLookup(addr: u32): u32 {
  let e = load<u32>(LPM_ROOT + ((addr >> 16) << 2));
  if (e & CHILD) {
    e = load<u32>(nodeAt(e & INDEX_MASK) + (((addr >> 8) & 0xff) << 2));
    if (e & CHILD) e = load<u32>(nodeAt(e & INDEX_MASK) + ((addr & 0xff) << 2));
  }
  return e & INDEX_MASK;
}
