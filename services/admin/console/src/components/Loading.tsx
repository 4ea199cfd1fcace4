/** What a page shows while its data is on the way (never a blank page). */
export function Loading({ what }: { readonly what: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}
