/**
 * Group commit: concurrent submissions share one statement and one commit.
 *
 * A submission waits at most `maxWaitMs` (0: until the current I/O callbacks have run) before
 * its group is written, and a group never exceeds `maxBatch` items. While `maxInFlight` groups are
 * being written, new submissions queue up and form the next group, so batches grow with the load
 * and a quiet server answers at once. Every submission is settled only after its group's
 * statement returned: a 2xx is never given for a row that is not committed.
 */

/** What `write` answers for one submission: its value, or the error it alone fails with. */
export type Outcome<Out> = { ok: true; value: Out } | { ok: false; error: unknown };

export interface GroupCommitOptions<In, Out> {
  /** Writes a group; returns one outcome per item, in order. A throw fails every item. */
  write(items: In[]): Promise<Outcome<Out>[]>;
  maxBatch: number;
  maxWaitMs: number;
  maxInFlight: number;
  /** Observes each group's size (metrics). */
  onGroup?(size: number): void;
}

interface Pending<In, Out> {
  item: In;
  resolve(value: Out): void;
  reject(error: unknown): void;
}

export class GroupCommit<In, Out> {
  private queue: Pending<In, Out>[] = [];
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  private idle: (() => void)[] = [];

  constructor(private readonly options: GroupCommitOptions<In, Out>) {}

  /** Submissions waiting for a group, plus groups being written (a gauge for metrics). */
  get pending(): number {
    return this.queue.length;
  }

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Writes everything queued now and resolves once no group is queued or being written. */
  async drain(): Promise<void> {
    this.cancelTimer();
    while (this.queue.length && this.inFlight < this.options.maxInFlight) this.flush();
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private schedule() {
    if (this.inFlight >= this.options.maxInFlight) return; // the next group forms when one completes
    if (this.queue.length >= this.options.maxBatch) {
      this.cancelTimer();
      this.flush();
      return;
    }
    if (this.timer !== undefined) return;
    const fire = () => {
      this.timer = undefined;
      if (this.inFlight < this.options.maxInFlight) this.flush();
    };
    this.timer = this.options.maxWaitMs > 0 ? setTimeout(fire, this.options.maxWaitMs) : setImmediate(fire);
  }

  private cancelTimer() {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as ReturnType<typeof setTimeout>);
    clearImmediate(this.timer as ReturnType<typeof setImmediate>);
    this.timer = undefined;
  }

  private flush() {
    const group = this.queue.splice(0, this.options.maxBatch);
    if (group.length === 0) return;
    this.inFlight++;
    this.options.onGroup?.(group.length);
    this.options
      .write(group.map((p) => p.item))
      .then(
        (outcomes) => {
          group.forEach((pending, i) => {
            const outcome = outcomes[i];
            if (!outcome) pending.reject(new Error('group commit: no outcome for an item'));
            else if (outcome.ok) pending.resolve(outcome.value);
            else pending.reject(outcome.error);
          });
        },
        (error) => {
          for (const pending of group) pending.reject(error);
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.queue.length) {
          // What queued up meanwhile goes now: it has waited for a whole group already.
          this.cancelTimer();
          while (this.queue.length && this.inFlight < this.options.maxInFlight) this.flush();
        } else if (this.inFlight === 0) {
          for (const resolve of this.idle.splice(0)) resolve();
        }
      });
  }
}
