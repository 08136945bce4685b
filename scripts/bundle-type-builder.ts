import { build } from 'esbuild'

// `npm run build` (and `npm test`, `npm run bench`) after tsc: dist/src/type-builder.js, TypeBox's
// `Type` bundled into one ES module (src/type-builder.d.ts says why). Only TypeBox is packed; the
// app's own modules stay as tsc wrote them.
const outfile = new URL('../src/type-builder.js', import.meta.url).pathname
await build({
  stdin: { contents: "export { Type } from 'typebox'", resolveDir: new URL('../..', import.meta.url).pathname, sourcefile: 'type-builder.js' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile,
  logLevel: 'warning'
})
