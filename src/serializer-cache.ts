import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'

type SerializerFactory = ReturnType<typeof SerializerSelector>
type SerializerCompiler = ReturnType<SerializerFactory>

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
