import { defineConfig } from 'vitest/config';

// Resolve workspace packages to their TypeScript sources (see tsconfig.base.json).
export default defineConfig({
  resolve: { conditions: ['@kvmts/source'] },
  ssr: { resolve: { conditions: ['@kvmts/source'] } },
  test: { include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'test/**/*.test.ts', 'test/**/*.test.tsx'], testTimeout: 60_000, passWithNoTests: true },
});
