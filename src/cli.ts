import { parseArgs } from 'node:util';
import { loadConfig } from './config.ts';
import { openDatabase } from './db/orm.ts';
import { createOrganization, findOrganizationBySlug } from './modules/orgs/orgs.service.ts';
import { createUser, hashPassword } from './modules/users/users.service.ts';
import { createApiKey } from './modules/apikeys/apikeys.service.ts';
import { ROLES, type Role } from './modules/users/user.entity.ts';
import { HttpError } from './http/problem.ts';

const USAGE = `Usage: bun run cli <command> [options]

Commands:
  migrate                                          apply pending migrations
  create-org --name NAME --slug SLUG               create an organization
  create-user --org SLUG --email EMAIL --role ROLE [--password PW] [--first-name N] [--last-name N]
                                                   create a user (password from --password or CHATLOGGER_PASSWORD)
  create-api-key --org SLUG --label LABEL [--expires-at ISO]
                                                   create an API key; the key is printed once
  hash-password [--password PW]                    print an argon2id hash (password from --password or stdin)

The database is chosen as by the server: DATABASE_URL, or the embedded one under DATA_DIR.`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string' },
    slug: { type: 'string' },
    org: { type: 'string' },
    email: { type: 'string' },
    role: { type: 'string' },
    password: { type: 'string' },
    'first-name': { type: 'string' },
    'last-name': { type: 'string' },
    label: { type: 'string' },
    'expires-at': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

function required(name: keyof typeof values): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') fail(`--${name} is required`);
  return value as string;
}

function fail(message: string): never {
  console.error(`error: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function readStdin(): Promise<string> {
  return (await new Response(Bun.stdin.stream()).text()).replace(/\r?\n$/, '');
}

async function withDatabase<T>(work: (db: Awaited<ReturnType<typeof openDatabase>>, applied: string[]) => Promise<T>): Promise<T> {
  const db = await openDatabase(loadConfig());
  try {
    return await work(db, await db.migrate());
  } finally {
    await db.close();
  }
}

const command = positionals[0];
try {
  switch (command) {
    case 'migrate': {
      const applied = await withDatabase(async (_db, applied) => applied);
      console.log(applied.length ? `applied ${applied.join(', ')}` : 'migrations are up to date');
      break;
    }
    case 'create-org': {
      const org = await withDatabase((db) => createOrganization(db.fork(), { name: required('name'), slug: required('slug') }, null));
      console.log(JSON.stringify({ id: org.id, slug: org.slug, name: org.name }));
      break;
    }
    case 'create-user': {
      const role = required('role');
      if (!(ROLES as readonly string[]).includes(role)) fail(`--role must be one of ${ROLES.join(', ')}`);
      const password = values.password ?? process.env.CHATLOGGER_PASSWORD;
      if (!password || password.length < 8) fail('a password of at least 8 characters is required');
      const user = await withDatabase(async (db) => {
        const em = db.fork();
        const org = await findOrganizationBySlug(em, required('org'));
        return createUser(
          em,
          org.id,
          { email: required('email'), password, role: role as Role, firstName: values['first-name'], lastName: values['last-name'] },
          null,
        );
      });
      console.log(JSON.stringify({ id: user.id, email: user.email, role: user.role }));
      break;
    }
    case 'create-api-key': {
      const { key, rawKey } = await withDatabase(async (db) => {
        const em = db.fork();
        const org = await findOrganizationBySlug(em, required('org'));
        return createApiKey(em, org.id, { label: required('label'), expiresAt: values['expires-at'] ?? null }, null);
      });
      console.log(JSON.stringify({ id: key.id, prefix: key.prefix, key: rawKey }));
      break;
    }
    case 'hash-password': {
      const password = values.password ?? (await readStdin());
      if (!password) fail('no password given');
      console.log(await hashPassword(password));
      break;
    }
    default:
      if (command && !values.help) fail(`unknown command "${command}"`);
      console.log(USAGE);
  }
} catch (error) {
  if (error instanceof HttpError) {
    const fields = error.errors?.map((e) => `${e.pointer.replace(/^\/body\//, '')} ${e.message}`).join('; ');
    fail(fields ? `${error.detail ?? error.title} ${fields}` : (error.detail ?? error.title));
  }
  throw error;
}
