// TypeBox's schema builder, as the app loads it: one module that `npm run build` bundles from the
// installed typebox (scripts/bundle-type-builder.ts writes dist/src/type-builder.js), not typebox's
// own 373 ES modules. Issue 18, idle RSS: Node keeps a record, the source and the compiled code of
// every module it loads, and typebox as published adds 9.7 MB to a process at rest where the bundle
// adds 1.6 MB. The schemas are the same objects either way: this is typebox's code, only packed.
// Types come from typebox itself; `import type { Static } from 'typebox'` stays as it is.
export { Type } from 'typebox'
