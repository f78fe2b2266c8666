/** The stroked icons of the UI, drawn on a 24×24 grid. */
const linePaths = {
  pencil: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3",
  regenerate: "M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6",
  arrowUp: "M12 19V5M5 12l7-7 7 7",
} as const;

export interface LineIconProps {
  name: keyof typeof linePaths;
  /** Width and height in CSS pixels. */
  size: number;
  /** In grid units (of 24). */
  strokeWidth: number;
}

/** An icon drawn in the text colour; hidden from screen readers, so the button around it carries the name. */
export function LineIcon({ name, size, strokeWidth }: LineIconProps) {
  return (
    <svg viewBox="0 0 24 24" width={size} height={size} aria-hidden="true">
      <path d={linePaths[name]} fill="none" stroke="currentColor" strokeWidth={strokeWidth} strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}
