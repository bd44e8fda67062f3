/**
 * A byte stream pulled from `chunks`: one chunk is produced only when the reader wants one, and
 * once the reader cancels (the client went away) or `signal` aborts, no further chunk is asked
 * for (the producer sees `isStopped()` turn true).
 */
export function pullStream(chunks: (isStopped: () => boolean) => AsyncGenerator<string>, signal?: AbortSignal): ReadableStream<Uint8Array> {
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  if (signal?.aborted) stopped = true;
  signal?.addEventListener('abort', stop, { once: true });
  const iterator = chunks(() => stopped);
  const encoder = new TextEncoder();
  const finish = () => signal?.removeEventListener('abort', stop);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (stopped) {
            // Cancelled: nobody reads any more. Aborted: end the body as an error, never as a
            // complete file.
            try {
              controller.error(new DOMException('The download was aborted.', 'AbortError'));
            } catch {
              // already cancelled
            }
            return;
          }
          if (next.done) {
            finish();
            controller.close();
          } else {
            controller.enqueue(encoder.encode(next.value));
          }
        } catch (error) {
          finish();
          if (!stopped) controller.error(error);
        }
      },
      async cancel() {
        stop();
        finish();
        await iterator.return(undefined);
      },
    },
    { highWaterMark: 1 },
  );
}
