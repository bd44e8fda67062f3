import { tooManyRequests } from '../../http/problem.ts';

/** What a refused download is told to wait: downloads take seconds to minutes. */
const RETRY_AFTER_SECONDS = 10;

/**
 * At most `max` downloads of one organization stream at once from this process, so that one
 * tenant cannot tie up the database with parallel full-table reads. The count is per instance:
 * with N instances an organization may stream up to N x max downloads.
 */
export class DownloadSlots {
  private readonly streaming = new Map<string, number>();

  constructor(private readonly max: number) {}

  /**
   * Answers `start()`'s response while holding a slot until its body ends, fails or is
   * cancelled (or the request is aborted); 429 when the organization has no slot free.
   */
  async stream(organizationId: string, signal: AbortSignal, start: () => Promise<Response> | Response): Promise<Response> {
    const release = this.acquire(organizationId);
    if (!release) {
      throw tooManyRequests(`At most ${this.max} downloads of this organization may stream at once; retry when one has finished.`, RETRY_AFTER_SECONDS);
    }
    try {
      return releasedAtEnd(await start(), release, signal);
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Downloads of the organization streaming now. */
  count(organizationId: string): number {
    return this.streaming.get(organizationId) ?? 0;
  }

  private acquire(organizationId: string): (() => void) | undefined {
    const count = this.count(organizationId);
    if (count >= this.max) return undefined;
    this.streaming.set(organizationId, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.count(organizationId) - 1;
      if (left > 0) this.streaming.set(organizationId, left);
      else this.streaming.delete(organizationId);
    };
  }
}

/** The same response, whose body calls `release` once, whichever way the download ends. */
function releasedAtEnd(response: Response, release: () => void, signal: AbortSignal): Response {
  if (!response.body) {
    release();
    return response;
  }
  const reader = response.body.getReader();
  signal.addEventListener('abort', release, { once: true });
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            release();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          release();
          controller.error(error);
        }
      },
      async cancel(reason) {
        release();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: response.status, headers: response.headers });
}
