import { defineConfig } from "vitest/config";

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
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // Each file builds its own lab (own name prefix); two cores: two at a time.
          maxWorkers: 2,
          pool: "forks",
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
