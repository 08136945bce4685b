import AjvCompiler from '@fastify/ajv-compiler'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { FastifySchemaCompiler } from 'fastify'

type SerializerFactory = ReturnType<typeof SerializerSelector>
type SerializerCompiler = ReturnType<SerializerFactory>

// @fastify/ajv-compiler's types have its compiler take the schema alone; Fastify passes it the
// route's schema definition (schema, method, url, httpPart), and that is what it reads. So the pool
// is typed here by what it does, and handed to Fastify as the factory type Fastify declares.
type AjvOptions = Exclude<Parameters<AjvCompiler.BuildCompilerFromPool>[1], { mode: 'JTD' } | undefined>
type BuildValidator = (externalSchemas: Record<string, unknown>, options: AjvOptions) => FastifySchemaCompiler<unknown>

/**
 * Fastify's own validator (@fastify/ajv-compiler, with the Ajv options Fastify passes it) in two
 * configurations. Query strings, path parameters and headers arrive as text, so they keep Fastify's
 * coercion ("true" is true, one value a one-item list). A JSON body already has its types, so a wrong
 * one is refused (400 naming the field) instead of turned into another: `{"model_id": 42}` would
 * otherwise reach the Hub as "42", and `"allow_patterns": 7` become the pattern "7".
 */
export function bodiesTakenAsSent (): AjvCompiler.ValidatorFactory {
  const fromPool = AjvCompiler() as unknown as BuildValidator
  const build: BuildValidator = (externalSchemas, options) => {
    const coercing = fromPool(externalSchemas, options)
    const exact = fromPool(externalSchemas, { ...options, customOptions: { ...options.customOptions, coerceTypes: false } })
    return (route) => onFirstCall(() => route.httpPart === 'body' ? exact(route) : coercing(route))
  }
  return build as unknown as AjvCompiler.ValidatorFactory
}

/**
 * Fastify asks for a serializer for every status of every route when the app starts; ours repeat
 * the same few shapes (every route answers ErrorResponse for four or five statuses), so each
 * distinct schema is compiled once per set of shared schemas, on its first use, and the function reused.
 */
export function sharedSerializers (): SerializerFactory {
  const build = SerializerSelector()
  return (externalSchemas, options) => {
    const compile = build(withoutSimpleUnions(externalSchemas) as typeof externalSchemas, options)
    const compiled = new Map<string, ReturnType<SerializerCompiler>>()
    return (route) => {
      const key = JSON.stringify(route.schema)
      let serialize = compiled.get(key)
      if (serialize === undefined) {
        serialize = onFirstCall(() => compile({ ...route, schema: withoutSimpleUnions(route.schema) as typeof route.schema }))
        compiled.set(key, serialize)
      }
      return serialize
    }
  }
}

type Compiled = ((...args: never[]) => unknown) & { errors?: unknown }

/**
 * A validator or serializer compiled by its first call rather than when its route is added. Most
 * routes of a server at rest are never asked, and compiling all of them at start left about 10 MB
 * of generated code and its garbage in the heap of an idle server (issue 18). Ajv's validators say
 * why they failed in their own `errors`, where Fastify reads them: the wrapper passes them on.
 */
export function onFirstCall<F extends Compiled> (compile: () => F): F {
  let compiled: F | undefined
  const call = (...args: Parameters<F>): unknown => {
    compiled ??= compile()
    const result = compiled(...args)
    call.errors = compiled.errors
    return result
  }
  call.errors = undefined as unknown
  return call as unknown as F
}

type SchemaNode = Record<string, unknown>
const isNode = (value: unknown): value is SchemaNode => typeof value === 'object' && value !== null && !Array.isArray(value)
const isNull = (option: SchemaNode): boolean => option.type === 'null'
const isStringLiteral = (option: SchemaNode): boolean => option.type === 'string' && typeof option.const === 'string'
// One type, nothing fast-json-stringify must resolve or choose between: `nullable` applies to it as written.
const isPlain = (option: SchemaNode): boolean => typeof option.type === 'string' && option.type !== 'null' &&
  !['$ref', 'anyOf', 'oneOf', 'allOf', 'const', 'nullable'].some((keyword) => keyword in option)

// A reference alone: fast-json-stringify applies the keywords beside a `$ref` to the schema it points to.
const isBareRef = (option: SchemaNode): boolean => typeof option.$ref === 'string' && Object.keys(option).every((keyword) => keyword === '$ref' || keyword === 'description')

/**
 * The serializers' copy of a schema, with its simple unions in the forms fast-json-stringify writes
 * without Ajv: `T | null` as `{ ...T, nullable: true }`, a union of string literals as a string enum.
 * For every `anyOf` it keeps, fast-json-stringify builds an Ajv instance and compiles a validator the
 * first time a value reaches it: 150–240 ms of blocked event loop at the first job answered in the
 * middle of a download. The output is the same for every value the schema allows; the OpenAPI
 * document and the request validators keep the schemas as declared.
 */
export function withoutSimpleUnions (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutSimpleUnions)
  if (!isNode(schema)) return schema
  const node: SchemaNode = {}
  for (const [keyword, value] of Object.entries(schema)) node[keyword] = withoutSimpleUnions(value)
  if (!Array.isArray(node.anyOf) || !node.anyOf.every(isNode)) return node
  const { anyOf: options, ...siblings } = node as SchemaNode & { anyOf: SchemaNode[] }
  const [only, ...more] = options.filter((option) => !isNull(option))
  if (only !== undefined && more.length === 0 && options.length === 2 && (isPlain(only) || isBareRef(only))) return { ...siblings, ...only, nullable: true }
  if (options.length > 0 && options.every(isStringLiteral)) return { ...siblings, type: 'string', enum: options.map((option) => option.const) }
  return asTypeList(options, siblings) ?? node
}

// Options of distinct single types whose other keywords do not overlap (`number | string | string[]`)
// as one schema with a list of types, which fast-json-stringify tells apart by `typeof`.
function asTypeList (options: SchemaNode[], siblings: SchemaNode): SchemaNode | undefined {
  if (options.length < 2 || !options.every((option) => isNull(option) || isPlain(option))) return undefined
  const types = options.map((option) => option.type as string)
  if (new Set(types).size !== types.length) return undefined
  const merged: SchemaNode = {}
  for (const option of options) {
    for (const [keyword, value] of Object.entries(option)) {
      if (keyword === 'type' || keyword === 'description') continue
      if (keyword in merged) return undefined
      merged[keyword] = value
    }
  }
  // Its string branch also takes any object with its own toString (an array): strings are tried last.
  return { ...siblings, ...merged, type: [...types.filter((type) => type !== 'string'), ...types.filter((type) => type === 'string')] }
}
