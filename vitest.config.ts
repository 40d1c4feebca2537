import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // The JSON report lets .ci/run print "N passed, N failed" after the README's own test command.
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
  },
})
