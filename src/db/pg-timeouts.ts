/**
 * Time limits of the PostgreSQL pool (`pg` via MikroORM's `driverOptions`), so that no request
 * waits for an unreachable or silent database longer than a bound:
 * - `connectionTimeoutMillis`: opening a connection, and waiting for a free one in a full pool;
 * - `statement_timeout`: the server cancels a longer statement (SQLSTATE 57014, answered 503);
 * - `query_timeout`: the client gives up one second later, for a network that went silent.
 */

interface PgClient {
  query(...args: unknown[]): unknown;
  end(): Promise<void>;
}
interface PgPool {
  on(event: 'connect', listener: (client: PgClient) => void): void;
}

const CLIENT_TIMEOUT = 'Query read timeout';

/**
 * A query that timed out on the client leaves its connection waiting for an answer that may
 * never come, and the pool would lend that connection again: every later query on it would
 * time out as well. Such a connection is closed instead (the pool drops closed connections on
 * release and opens new ones).
 */
function closeConnectionsThatTimedOut(pool: PgPool) {
  pool.on('connect', (client) => {
    const query = client.query.bind(client);
    client.query = (...args: unknown[]) => {
      const result = query(...args);
      if (result instanceof Promise) {
        result.catch((error: unknown) => {
          if ((error as Error | undefined)?.message === CLIENT_TIMEOUT) client.end().catch(() => {});
        });
      }
      return result;
    };
  });
}

export function postgresDriverOptions(connectTimeoutSeconds: number, statementTimeoutSeconds: number | undefined) {
  return {
    connectionTimeoutMillis: connectTimeoutSeconds * 1000,
    ...(statementTimeoutSeconds && {
      statement_timeout: statementTimeoutSeconds * 1000,
      query_timeout: statementTimeoutSeconds * 1000 + 1000,
      onPoolCreated: closeConnectionsThatTimedOut,
    }),
  };
}
