import { p } from '@mikro-orm/core';

/** Fresh builders per entity: UUIDv7 id and timestamps maintained by the unit of work. */
export const baseProperties = () => ({
  id: p.uuid().primary().onCreate(() => Bun.randomUUIDv7()),
  createdAt: p.datetime().onCreate(() => new Date()),
  updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
});
