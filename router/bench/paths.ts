// The paths `weft bench dataplane` measures, in run order (kept apart from bench.ts so
// the CLI can list them without loading the bench).
export const BENCH_PATHS = ["kernel-direct", "kernel-vxlan", "weft-ipip", "weft-ipip-nicgro", "weft-vxlan", "weft-vxlan-rxthread", "weft-vxlan-busypoll", "weft-crosssubnet"] as const;
export type BenchPath = (typeof BENCH_PATHS)[number];
