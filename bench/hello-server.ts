import Fastify from 'fastify'

// The baseline for API overhead: a bare Fastify hello-world, started like modeldepot (`node file.js`,
// PORT and HOST from the environment, pino request logging at info to stdout).

const app = Fastify({ logger: { level: 'info' } })
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' })
