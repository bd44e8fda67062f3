import { Elysia } from 'elysia';
import { notFound } from './problem.ts';

/**
 * Path parameters are percent-decoded text that reaches SQL. One that does not decode (invalid
 * percent-encoding or UTF-8, which the router hands on as `undefined`) or that holds a NUL
 * character or a lone surrogate (which PostgreSQL text cannot store) names nothing that could
 * exist: 404, before any handler or authentication reads it.
 */
export const pathParams = new Elysia({ name: 'path-params' }).onTransform({ as: 'global' }, ({ params, route }) => {
  for (const [, name] of route.matchAll(/:(\w+)/g)) {
    const value = (params as Record<string, unknown> | undefined)?.[name!];
    if (typeof value !== 'string' || value.includes('\u0000') || !value.isWellFormed()) throw notFound();
  }
});
