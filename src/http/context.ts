import { Elysia } from 'elysia';
import type { Database } from '../db/orm.ts';

/** The one place a request gets its own entity manager (a fork: its own identity map and unit of work). */
export const requestContext = (db: Database) =>
  new Elysia({ name: 'request-context' }).decorate('db', db).derive({ as: 'global' }, () => ({ em: db.fork() }));
export type RequestContext = ReturnType<typeof requestContext>;
