/**
 * A fixed number of slots, each lent to one borrower at a time, with the resource behind a
 * slot (a connection) kept open between loans. Exclusive loans are what let a publish call
 * pipeline a whole batch on one connection: nobody else's requests are queued behind or
 * between its own, and tearing the connection down on a failure concerns that call only.
 * Borrowers beyond the slot count wait in arrival order.
 */
export interface LeasePoolOptions<T> {
  /** Slots, the most resources lent or idle at once. */
  size: number;
  /** Makes a resource for a slot that has none (or whose one is no longer reusable). */
  open(): Promise<T>;
  /** Whether a returned resource can be lent again. */
  reusable(resource: T): boolean;
  /** Frees a resource that will not be lent again. */
  discard(resource: T): void;
}

export interface LeasePool<T> {
  /** A resource for the caller alone until release(). Rejects with the signal's reason, the close reason, or open()'s error. */
  acquire(signal?: AbortSignal): Promise<T>;
  release(resource: T): void;
  /** Refuses new loans and fails the waiting borrowers with `reason`; lent resources stay theirs. */
  close(reason: Error): void;
  /** Discards the idle resources. */
  destroyIdle(): void;
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
}

export function createLeasePool<T>(options: LeasePoolOptions<T>): LeasePool<T> {
  let free = options.size;
  const idle: T[] = [];
  const waiters: Waiter[] = [];
  let closedWith: Error | undefined;

  /** Resolves once a slot is the caller's. */
  const takeSlot = (signal: AbortSignal | undefined): Promise<void> => {
    if (free > 0) {
      free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = waiters.indexOf(waiter);
        if (i >= 0) waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (reason) => {
          signal?.removeEventListener("abort", onAbort);
          reject(reason);
        },
      };
      waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  const giveSlot = () => {
    const next = waiters.shift();
    if (next) next.resolve();
    else free++;
  };

  return {
    async acquire(signal) {
      if (closedWith) throw closedWith;
      if (signal?.aborted) throw signal.reason;
      await takeSlot(signal);
      // Most recently returned first: the fewest connections stay warm under light load.
      for (let resource = idle.pop(); resource !== undefined; resource = idle.pop()) {
        if (options.reusable(resource)) return resource;
        options.discard(resource);
      }
      try {
        return await options.open();
      } catch (err) {
        giveSlot();
        throw err;
      }
    },

    release(resource) {
      if (!closedWith && options.reusable(resource)) idle.push(resource);
      else options.discard(resource);
      giveSlot();
    },

    close(reason) {
      closedWith ??= reason;
      for (const w of waiters.splice(0)) w.reject(reason);
    },

    destroyIdle() {
      for (const resource of idle.splice(0)) options.discard(resource);
    },
  };
}
