/**
 * The Dockerfile and docker-compose.yml, checked without a Docker engine: the Dockerfile is
 * parsed (dockerfile-ast) and linted (dockerfile-utils, the checks of the Docker language
 * server), the compose file is parsed as YAML, and both are held to what the server really
 * reads and serves.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { DockerfileParser, type Dockerfile } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../src/config.ts';
import { spec } from '../src/http/contract.ts';
import { WEB_DIST } from '../src/modules/web/web.bundle.ts';
import { createTestApp, type TestApp } from './support/harness.ts';
import { PROJECT_ROOT } from './support/process.ts';

// Real databases and servers on a busy machine: more than bun's 5 s default.
setDefaultTimeout(30_000);

const read = (file: string) => readFileSync(join(PROJECT_ROOT, file), 'utf8');
const dockerfileText = read('Dockerfile');
const dockerfile: Dockerfile = DockerfileParser.parse(dockerfileText);
const runtime = dockerfile.getFROMs().at(-1)!;
/** Instructions of the final stage (the image that runs). */
const runtimeInstructions = dockerfile.getInstructions().filter((i) => i.getRange().start.line > runtime.getRange().start.line);
const keyword = (name: string) => runtimeInstructions.filter((i) => i.getKeyword() === name);
const args = (instruction: { getArguments(): { getValue(): string }[] }) => instruction.getArguments().map((a) => a.getValue());

interface ComposeService {
  build?: { context: string; args?: Record<string, string> };
  image?: string;
  ports?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
}
const compose = Bun.YAML.parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const app = compose.services.chatlogger!;
const postgres = compose.services.postgres!;

const DEFAULT_PORT = loadConfig({ JWT_SECRET: 'x'.repeat(32), DATA_DIR: '/tmp/chatlogger-unused' }).port;

describe('the server configuration', () => {
  test('CONFIG_VARIABLES names exactly the variables loadConfig reads', () => {
    // The compiler refuses a read of an unlisted name; this catches listed names nobody reads.
    const seen = new Set<string>();
    const env = new Proxy({ JWT_SECRET: 'x'.repeat(32), DATA_DIR: '/tmp/chatlogger-unused' } as Record<string, string | undefined>, {
      get(target, name) {
        if (typeof name === 'string') seen.add(name);
        return target[name as string];
      },
    });
    loadConfig(env);
    expect(CONFIG_VARIABLES.filter((name) => !seen.has(name)).map((name) => `CONFIG_VARIABLES lists ${name}, which loadConfig never reads`)).toEqual([]);
    expect([...seen].filter((name) => !CONFIG_VARIABLES.includes(name as never)).map((name) => `loadConfig reads ${name}, missing from CONFIG_VARIABLES`)).toEqual([]);
  });
});

describe('Dockerfile', () => {
  test('lints clean', () => {
    expect(validate(dockerfileText).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    // The linter does catch mistakes: a sanity check that it is not silently passing everything.
    expect(validate('FROM oven/bun:1.4.5-slim\nEXPOSE eighty\nHEALTHCHECK --interval=abc CMD true\n').length).toBeGreaterThan(0);
  });

  test('is multi-stage on oven/bun 1.4.5, installing only production packages from the lockfile', () => {
    const froms = dockerfile.getFROMs();
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const stages: string[] = [];
    for (const from of froms) {
      // A stage starts from the official image or from an earlier stage.
      if (!stages.includes(from.getImageName() ?? '')) expect(`${from.getImageName()}:${from.getImageTag()}`).toMatch(/^oven\/bun:1\.4\.5(-[a-z]+)?$/);
      stages.push(from.getBuildStage() ?? '');
    }
    const installs = dockerfile.getInstructions().filter((i) => i.getKeyword() === 'RUN' && /\bbun install\b/.test(i.getArgumentsContent() ?? ''));
    expect(installs.length).toBe(1);
    expect(args(installs[0]!)).toEqual(expect.arrayContaining(['--frozen-lockfile', '--production']));
    // The runtime takes node_modules from the deps stage instead of installing again.
    const fromStages = keyword('COPY').map((c) => (c as unknown as { getFromFlag(): { getValue(): string } | null }).getFromFlag()?.getValue());
    expect(fromStages).toContain(froms[0]!.getBuildStage() ?? undefined);
  });

  test('everything it copies exists and is not excluded by .dockerignore; the files the server reads at run time are among them', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources: string[] = [];
    for (const copy of dockerfile.getInstructions().filter((i) => i.getKeyword() === 'COPY')) {
      if ((copy as unknown as { getFromFlag(): unknown }).getFromFlag()) continue;
      sources.push(...args(copy).filter((a) => !a.startsWith('--')).slice(0, -1));
    }
    for (const source of sources) {
      expect(existsSync(join(PROJECT_ROOT, source))).toBe(true);
      expect(ignored.filter((pattern) => source === pattern || source.startsWith(`${pattern}/`))).toEqual([]);
    }
    // src/http/contract.ts embeds ../../openapi.yaml; src/config.ts reads ../package.json.
    expect(sources).toEqual(expect.arrayContaining(['src', 'openapi.yaml', 'package.json']));
  });

  test('the image carries the dashboard, built where the server looks for it', () => {
    const workdir = args(keyword('WORKDIR').at(-1)!)[0]!;
    const dashboard = keyword('COPY').find((c) => args(c).at(-1)!.endsWith('dist/web'));
    expect(dashboard).toBeDefined();
    const target = args(dashboard!).at(-1)!;
    expect(join(workdir, target)).toBe(join(workdir, relative(PROJECT_ROOT, WEB_DIST)));
    const build = dockerfile.getInstructions().find((i) => i.getKeyword() === 'RUN' && /web\/build\.ts|build:web/.test(i.getArgumentsContent() ?? ''));
    expect(build).toBeDefined();
  });

  test('runs as an unprivileged user, keeps its data in a volume and exposes the default port', () => {
    const users = keyword('USER');
    expect(users.length).toBeGreaterThan(0);
    const user = args(users.at(-1)!)[0]!;
    expect(['root', '0', '0:0']).not.toContain(user.split(':')[0]);
    const env = Object.fromEntries(keyword('ENV').flatMap((e) => (e as unknown as { getProperties(): { getName(): string; getValue(): string }[] }).getProperties().map((p) => [p.getName(), p.getValue()])));
    expect(env.DATA_DIR).toBe('/data');
    expect(keyword('VOLUME').map((v) => v.getArgumentsContent())).toContain('["/data"]');
    // `chown` of the volume's directory to that user, so the embedded database can be written.
    expect(keyword('RUN').some((r) => (r.getArgumentsContent() ?? '').includes(`chown ${user}:`))).toBe(true);
    expect(keyword('EXPOSE').flatMap(args)).toEqual([String(DEFAULT_PORT)]);
    expect(env.PORT).toBe(String(DEFAULT_PORT));
    // Every variable the image sets is one the server reads.
    expect(Object.keys(env).filter((name) => !CONFIG_VARIABLES.includes(name as never))).toEqual([]);
  });

  test('VERSION, BUILD_TIME and GIT_COMMIT build args become the variables /version reports', async () => {
    const declared = keyword('ARG').map((a) => args(a)[0]!.split('=')[0]);
    expect(declared).toEqual(expect.arrayContaining(['VERSION', 'BUILD_TIME', 'GIT_COMMIT']));
    const env = keyword('ENV').flatMap(args);
    for (const name of ['VERSION', 'BUILD_TIME', 'GIT_COMMIT']) expect(env).toContain(`${name}=\${${name}}`);
    expect(Object.keys(app.build?.args ?? {}).sort()).toEqual(['BUILD_TIME', 'GIT_COMMIT', 'VERSION']);

    const built = await createTestApp({ VERSION: '9.8.7', BUILD_TIME: '2026-11-24T06:00:00Z', GIT_COMMIT: 'a'.repeat(40) });
    const response = await built.fetch('/version');
    expect(await response.json()).toEqual({ version: '9.8.7', buildTime: '2026-11-24T06:00:00Z', gitCommit: 'a'.repeat(40) });
    // Empty build args (the defaults) fall back to package.json's version.
    const fallback = loadConfig({ JWT_SECRET: 'x'.repeat(32), DATA_DIR: '/tmp/chatlogger-unused', VERSION: '', GIT_COMMIT: '' });
    expect(fallback.version.version).toBe(JSON.parse(read('package.json')).version);
  });

  describe('HEALTHCHECK', () => {
    let t: TestApp;
    let server: ReturnType<typeof Bun.serve>;
    beforeAll(async () => {
      t = await createTestApp();
      server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (request) => t.app.handle(request) });
    });
    afterAll(() => server.stop(true));

    const healthcheck = () => {
      const checks = keyword('HEALTHCHECK');
      expect(checks.length).toBe(1);
      const command = checks[0]!.getArgumentsContent()!.replace(/^CMD\s+/, '');
      return JSON.parse(command) as string[];
    };

    test('asks a route of the contract with a tool the image has (bun, not curl)', () => {
      const argv = healthcheck();
      expect(argv[0]).toBe('bun');
      const path = argv.join(' ').match(/'(\/[a-z]+)'/)?.[1];
      expect(path).toBe('/health');
      expect(spec.paths['/health']).toBeDefined();
      expect(spec.paths['/health']?.get).toMatchObject({ security: [] });
    });

    test('exits 0 against a running server and 1 when nothing answers', async () => {
      const argv = healthcheck();
      const run = (port: number) =>
        Bun.spawn([process.execPath, ...argv.slice(1)], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdout: 'ignore', stderr: 'ignore' }).exited;
      expect(await run(server.port!)).toBe(0);
      const closed = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('') });
      const closedPort = closed.port!;
      await closed.stop(true);
      expect(await run(closedPort)).toBe(1);
    });
  });
});

describe('docker-compose.yml', () => {
  test('sets only variables the server reads, and marks JWT_SECRET and ADMIN_PASSWORD as required', () => {
    const env = app.environment ?? {};
    expect(Object.keys(env).filter((name) => !CONFIG_VARIABLES.includes(name as never))).toEqual([]);
    expect(env.NODE_ENV).toBe('production');
    expect(env.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?.*required.*\}$/);
    expect(env.ADMIN_PASSWORD).toMatch(/^\$\{ADMIN_PASSWORD:\?.*required.*\}$/);
    expect(env.ADMIN_EMAIL).toMatch(/^\$\{ADMIN_EMAIL:-[^@\s]+@[^@\s]+\}$/);
  });

  test('publishes the port the server listens on', () => {
    const [published, container] = app.ports![0]!.split(':');
    expect(Number(container)).toBe(DEFAULT_PORT);
    expect(Number(published)).toBe(8080);
    expect(app.environment?.PORT ?? String(DEFAULT_PORT)).toBe(String(DEFAULT_PORT));
    expect(keyword('EXPOSE').flatMap(args)).toContain(container);
  });

  test('PostgreSQL 15 or 16 on a named volume, healthy (pg_isready) before the server starts', () => {
    expect(postgres.image).toMatch(/^postgres:1[56](\.\d+)?(-[a-z0-9]+)?$/);
    const volume = postgres.volumes![0]!.split(':')[0]!;
    expect(compose.volumes).toHaveProperty(volume);
    expect(postgres.healthcheck!.test.join(' ')).toContain('pg_isready');
    expect(app.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  test("DATABASE_URL names the postgres service, its user and its database", () => {
    const url = new URL(app.environment!.DATABASE_URL!.replace(/\$\{[^}]+\}/g, 'secret'));
    const pgEnv = (postgres as { environment?: Record<string, string> }).environment!;
    expect(url.protocol).toBe('postgres:');
    expect(url.hostname).toBe('postgres');
    expect(url.username).toBe(pgEnv.POSTGRES_USER);
    expect(url.pathname).toBe(`/${pgEnv.POSTGRES_DB}`);
    expect(app.environment!.DATABASE_URL).toContain('${POSTGRES_PASSWORD');
    expect(pgEnv.POSTGRES_PASSWORD).toContain('${POSTGRES_PASSWORD');
  });

  test('the variables the compose file sets pass the server\'s own validation', () => {
    const env: Record<string, string> = {};
    // What `openssl rand -base64 48` (the compose file's own advice) produces.
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64');
    for (const [name, value] of Object.entries(app.environment ?? {})) {
      // What a person running `docker compose up` would supply for each reference.
      env[name] = value.replace(/\$\{(\w+)(?::[-?]([^}]*))?\}/g, (_, ref: string, fallback: string | undefined) =>
        ref === 'JWT_SECRET' ? secret : ref === 'ADMIN_PASSWORD' ? 'a-long-password' : ref === 'POSTGRES_PASSWORD' ? 'pw' : (fallback ?? ''),
      );
    }
    const config = loadConfig({ ...env, DATA_DIR: '/tmp/chatlogger-unused' });
    expect(config.env).toBe('production');
    expect(config.databaseUrl).toBe('postgres://chatlogger:pw@postgres:5432/chatlogger');
    expect(config.metricsToken).toBeUndefined();
  });
});
