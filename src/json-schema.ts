import { Type } from './type-builder.js'
import type { Static, TLiteral, TSchema, TSchemaOptions, TUnion, TUnsafe } from 'typebox'

// Helpers for the JSON Schema (TypeBox) the domain declares its API shapes in. JSON Schema says
// nothing of HTTP, so src/ may hold it; the routes serve it.

/** A schema that may also be null, with an optional description for the OpenAPI document. */
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T, description?: string) =>
  Type.Union([schema, Type.Null()], description === undefined ? {} : { description })

type TLiterals<Values extends readonly string[]> = { -readonly [K in keyof Values]: TLiteral<Values[K]> }

/**
 * One of a list of strings, as a union of literals (each `{ type: 'string', const }`), typed as the union
 * of the list's values. TypeBox types a union by its tuple, which `map` would lose.
 */
export const LiteralUnion = <const Values extends readonly string[]>(values: Values, options: TSchemaOptions = {}): TUnion<TLiterals<Values>> =>
  Type.Union<TLiterals<Values>>(values.map((value) => Type.Literal(value)) as [...TLiterals<Values>], options)

/**
 * A `$ref` to a schema the app registers by its `$id` (Fastify's addSchema), typed as that schema, so
 * Fastify's type provider types what it validates while the OpenAPI document keeps the reference.
 */
export function RefTo<T extends TSchema> (schema: T, options: TSchemaOptions = {}): TUnsafe<Static<T>> {
  if (!('$id' in schema) || typeof schema.$id !== 'string') throw new TypeError('RefTo needs a schema with an $id')
  return Type.Unsafe<Static<T>>({ $ref: `${schema.$id}#`, ...options })
}

/**
 * Compiles only when A and B are the same type. For an API shape whose domain module still declares
 * it as an interface, beside the route's schema: tsc fails when one of the two changes alone.
 * `export type Checked = Expect<SameShape<Static<typeof Schema>, DomainType>>`.
 */
export type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
export type Expect<T extends true> = T
