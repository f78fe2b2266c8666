import { useCallback, useEffect, useRef, type RefObject } from "react";

/** Within this many px of the bottom counts as "reading the latest", so new text keeps it in view. */
const nearBottomPx = 120;

/**
 * Keeps a scroll container pinned to its end while content grows, unless the
 * reader has scrolled up to read earlier messages. `release()` unpins at once, for code that
 * scrolls elsewhere itself (the scroll event that would unpin arrives a frame later, after
 * the next render could have pulled the view back down).
 */
export function useStickToBottom(container: RefObject<HTMLElement | null>, contentVersion: unknown): { release: () => void } {
  const pinnedRef = useRef(true);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const onScroll = () => {
      pinnedRef.current = element.scrollHeight - element.scrollTop - element.clientHeight < nearBottomPx;
    };
    element.addEventListener("scroll", onScroll, { passive: true });
    return () => element.removeEventListener("scroll", onScroll);
  }, [container]);

  useEffect(() => {
    const element = container.current;
    if (element && pinnedRef.current) element.scrollTop = element.scrollHeight;
  }, [container, contentVersion]);

  return { release: useCallback(() => (pinnedRef.current = false), []) };
}
