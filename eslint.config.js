import neostandard from 'neostandard'

// fastify's own style (neostandard, with its TypeScript rules) over everything we write, and a line
// length a side-by-side diff can show; a long string or URL may run past it rather than be cut.
export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'openapi/**'] }),
  {
    rules: {
      // `void promise` as a statement marks a promise deliberately not awaited (an event handler's).
      'no-void': ['error', { allowAsStatement: true }],
      '@stylistic/max-len': ['error', { code: 160, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true }]
    }
  }
]
