import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { Page } from './api.ts';

export interface Async<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  reload(): void;
  setData(data: T): void;
}

/** Runs `load` when `deps` change; answers that arrive after a newer load started are dropped. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ data: s.data, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return {
    ...state,
    reload: useCallback(() => setTick((t) => t + 1), []),
    setData: useCallback((data: T) => setState({ data, loading: false }), []),
  };
}

export interface Paged<T> {
  items: T[];
  error: Error | undefined;
  loading: boolean;
  /** True once the last page has arrived. */
  done: boolean;
  loadMore(): void;
  /** Put on an element after the list: when it nears the viewport the next page loads. */
  sentinel(element: Element | null): void;
  update(change: (items: T[]) => T[]): void;
}

/**
 * Keyset pages, fetched one after the other as the user scrolls (IntersectionObserver on a
 * sentinel). Starts over when `deps` change.
 */
export function usePaged<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>, deps: unknown[], rootMargin = '600px'): Paged<T> {
  const [items, setItems] = useState<T[]>([]);
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(false);
  const [done, setDone] = useState(false);
  const state = useRef({ generation: 0, cursor: undefined as string | undefined, loading: false, done: false });
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;

  const loadMore = useCallback(() => {
    const s = state.current;
    if (s.loading || s.done) return;
    s.loading = true;
    setLoading(true);
    setError(undefined);
    const generation = s.generation;
    fetchRef.current(s.cursor).then(
      (page) => {
        if (generation !== s.generation) return;
        s.cursor = page.nextCursor ?? undefined;
        s.done = page.nextCursor === null;
        s.loading = false;
        setItems((previous) => previous.concat(page.items));
        setDone(s.done);
        setLoading(false);
      },
      (e: Error) => {
        if (generation !== s.generation) return;
        s.loading = false;
        setError(e);
        setLoading(false);
      },
    );
  }, []);

  useEffect(() => {
    const s = state.current;
    s.generation++;
    s.cursor = undefined;
    s.loading = false;
    s.done = false;
    setItems([]);
    setDone(false);
    loadMore();
  }, deps);

  const sentinelElement = useRef<Element | null>(null);
  // A page that does not fill the screen leaves the sentinel in view: the observer will not fire
  // again, so ask for the next page as soon as this one has landed. The observer's last report
  // may predate the new rows, so the sentinel's position is measured now.
  useEffect(() => {
    const element = sentinelElement.current;
    if (loading || error || !element) return;
    if (element.getBoundingClientRect().top < window.innerHeight + parseInt(rootMargin, 10)) loadMore();
  }, [loading, error, items.length, loadMore, rootMargin]);

  const observer = useRef<IntersectionObserver | undefined>(undefined);
  const sentinel = useCallback(
    (element: Element | null) => {
      observer.current?.disconnect();
      sentinelElement.current = element;
      if (!element) return;
      observer.current = new IntersectionObserver(
        (entries) => {
          if (entries[entries.length - 1]?.isIntersecting) loadMore();
        },
        { rootMargin },
      );
      observer.current.observe(element);
    },
    [loadMore, rootMargin],
  );
  useEffect(() => () => observer.current?.disconnect(), []);

  return { items, error, loading, done, loadMore, sentinel, update: setItems };
}
