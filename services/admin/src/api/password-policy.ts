/**
 * The password rule as users are told it, shared by the API (which refuses before asking storage)
 * and the console (which explains it before sending). Storage enforces the same length, address
 * and variety rules (services/storage/src/directory/passwords.ts); the list of common passwords is
 * checked here, where it can be explained next to the field. Pure: no I/O.
 */

export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 256;

export const PASSWORD_HINT = `${PASSWORD_MIN} to ${PASSWORD_MAX} characters, at least 4 different ones; not containing the name before the @ of the address, and not a commonly used password.`;

/**
 * Passwords of 10 or more characters that appear near the top of every published leak list
 * (shorter ones already fail the length rule). Compared case-insensitively, ignoring spaces.
 */
const COMMON = new Set([
  '1234567890',
  '12345678910',
  '123456789a',
  '0123456789',
  '0987654321',
  '1111111111',
  '1q2w3e4r5t',
  '1q2w3e4r5t6y',
  'q1w2e3r4t5',
  'qwertyuiop',
  'qwerty1234',
  'qwerty12345',
  'qwerty123456',
  '1qaz2wsx3edc',
  'zaq12wsxcde3',
  'asdfghjkl1',
  'password12',
  'password123',
  'password1234',
  'password1!',
  'password!1',
  'passw0rd123',
  'p@ssw0rd123',
  'p@ssword123',
  'iloveyou12',
  'iloveyou123',
  'letmein123',
  'welcome123',
  'welcome2026',
  'welcome2025',
  'changeme123',
  'administrator',
  'admin12345',
  'admin123456',
  'abcdefghij',
  'abcd123456',
  'abc1234567',
  'football123',
  'baseball123',
  'sunshine123',
  'princess123',
  'monkey12345',
  'dragon12345',
  'trustno1234',
  'superman123',
  'starwars123',
  'computer123',
  'internet123',
  'michael123',
  'whatever123',
  'summer2025',
  'summer2026',
  'winter2025',
  'winter2026',
  'spring2026',
  'autumn2025',
]);

/** Why a password is refused, in words that finish "The password …"; undefined when it is fine. */
export function passwordProblem(password: string, address = ''): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `must be at least ${PASSWORD_MIN} characters`;
  if (length > PASSWORD_MAX) return `must be at most ${PASSWORD_MAX} characters`;
  const local = address.includes('@') ? address.slice(0, address.lastIndexOf('@')) : address;
  if (local.length >= 3 && password.toLowerCase().includes(local.toLowerCase()))
    return `must not contain “${local}” (the name before the @)`;
  if (new Set(password).size < 4) return 'must use at least 4 different characters';
  if (COMMON.has(password.toLowerCase().replace(/\s+/g, ''))) return 'is a commonly used password';
  return undefined;
}
