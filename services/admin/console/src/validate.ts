/** Client-side checks of form fields; the server checks again and its errors show the same way. */
export const isDomain = (v: string): string | undefined =>
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i.test(
    v.trim(),
  )
    ? undefined
    : 'Enter a domain name such as example.com.';
export const isAddress = (v: string): string | undefined =>
  /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim()) ? undefined : 'Enter an address such as name@example.com.';
export const isPassword = (v: string): string | undefined =>
  v.length >= 10 ? undefined : 'Use at least 10 characters.';
export const isCount = (v: string): string | undefined =>
  /^\d+$/.test(v) ? undefined : 'Enter a whole number (0 = unlimited).';
export const isLimit = (v: string): string | undefined =>
  /^\d{1,7}$/.test(v) ? undefined : 'Enter a whole number (0 = the service default).';
