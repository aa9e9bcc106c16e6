import { defineConfig } from "vitest/config";

// Files that load both cores on purpose (cni-conformance starts 40 plugin processes at
// once): they run alone, after the others. Beside one, another file's node took over
// 20 s to start and that file failed, in two fresh-clone runs of five.
const SATURATING = ["netns-tests/cni-conformance.test.ts"];

export default defineConfig({
  test: {
    reporters: ["verbose"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["router/**/*.test.ts", "asm/**/*.test.ts"],
          testTimeout: 120_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: "netns",
          include: ["netns-tests/**/*.test.ts"],
          exclude: [...SATURATING],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // Each file builds its own lab (own name prefix); two cores: two at a time.
          maxWorkers: 2,
          pool: "forks",
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: "netns-alone",
          include: [...SATURATING],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          maxWorkers: 1,
          pool: "forks",
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
