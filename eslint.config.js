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
  },
  {
    // The server loads TypeBox's builder as one bundled module (src/type-builder.d.ts): its code imports
    // `Type` from there and only types from typebox itself. Tests and benches may use typebox as published.
    files: ['src/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts', 'scripts/**/*.ts'],
    ignores: ['src/type-builder.d.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [{ name: 'typebox', message: "Import Type from src/type-builder.js (one bundled module) and types with 'import type'.", allowTypeImports: true }],
        patterns: [{ group: ['typebox/*'], message: 'The server loads only the bundled builder (src/type-builder.js).', allowTypeImports: true }]
      }]
    }
  }
]
