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
    return (route) => route.httpPart === 'body' ? exact(route) : coercing(route)
  }
  return build as unknown as AjvCompiler.ValidatorFactory
}

/**
 * Fastify compiles a serializer for every status of every route when the app starts; ours repeat
 * the same few shapes (every route answers ErrorResponse for four or five statuses), so each
 * distinct schema is compiled once per set of shared schemas and the function reused. That is most
 * of the time an app takes to start.
 */
export function sharedSerializers (): SerializerFactory {
  const build = SerializerSelector()
  return (externalSchemas, options) => {
    const compile = build(externalSchemas, options)
    const compiled = new Map<string, ReturnType<SerializerCompiler>>()
    return (route) => {
      const key = JSON.stringify(route.schema)
      let serialize = compiled.get(key)
      if (serialize === undefined) {
        serialize = compile(route)
        compiled.set(key, serialize)
      }
      return serialize
    }
  }
}
