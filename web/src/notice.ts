import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<(text: string) => void>();

/** A short confirmation shown by the shell, e.g. after an action that navigated away. */
export function notify(text: string) {
  listeners.forEach((listener) => listener(text));
}

export function useNotice(): [string | null, () => void] {
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const listener = (next: string) => {
      setText(next);
      clearTimeout(timer);
      timer = setTimeout(() => setText(null), 6000);
    };
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      clearTimeout(timer);
    };
  }, []);
  return [text, () => setText(null)];
}
