/**
 * What an API key may do. Each scope includes the ones before it: `download` can read, `admin` can
 * do everything. Routes declare the one they need (their `config.scope`).
 */
export const SCOPES = ['read', 'download', 'admin'] as const
export type Scope = (typeof SCOPES)[number]

export const isScope = (value: unknown): value is Scope => SCOPES.includes(value as Scope)

/** Does a key with scope `held` pass a route that needs `required`? */
export const grants = (held: Scope, required: Scope): boolean => SCOPES.indexOf(held) >= SCOPES.indexOf(required)

/** The broadest of a key's scopes (a key listed with ["read", "admin"] is an admin key). */
export const broadest = (scopes: readonly Scope[]): Scope =>
  scopes.reduce<Scope>((best, scope) => (grants(scope, best) ? scope : best), 'read')
