import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Under CI also write a JSON report: .ci/run turns it into the plain "N passed, N failed" line.
    reporters: process.env.CI === 'true' ? ['default', ['json', { outputFile: '.ci/test-results.json' }]] : ['default']
  }
})
