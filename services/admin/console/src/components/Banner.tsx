/** Error and success notices, shown next to what was done. */
import { type ReactNode } from 'react';
import { ApiFailure } from '../api.js';

export function ErrorBanner({ error }: { readonly error: unknown }) {
  if (error === undefined || error === null) return null;
  const message =
    error instanceof ApiFailure
      ? error.error.code === 'permission_denied'
        ? `You do not have permission for this (${error.message.replace(/^not allowed: /, '')}).`
        : error.message
      : 'Something went wrong. Try again.';
  return (
    <div className="error" role="alert">
      {message}
    </div>
  );
}

export function Notice({ children }: { readonly children: ReactNode }) {
  return (
    <div className="notice" role="status">
      {children}
    </div>
  );
}
