/**
 * The console's vacation form as a Sieve script (RFC 5230): the form's fields are kept on the
 * script's first line (a comment, as JSON) so the form can show them again, and the rest is the
 * script storage runs. One script name is the form's; a user who writes their own scripts sees it
 * among them like any other.
 */

export const VACATION_SCRIPT = 'vacation';
const MARKER = '# Postmesh vacation form: ';

export interface VacationSettings {
  readonly subject: string;
  readonly body: string;
  /** RFC 5230 §4.1 `:days`, 1–365 (docs/sieve.md bounds). */
  readonly days: number;
}

/** RFC 5228 §2.4.2: a quoted string escapes `"` and `\`; line breaks are CRLF. */
function quoted(text: string): string {
  return `"${text.replace(/\r?\n/g, '\r\n').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function vacationScript(settings: VacationSettings): string {
  const subject = settings.subject.trim();
  return (
    `${MARKER}${JSON.stringify(settings)}\r\n` +
    'require ["vacation"];\r\n' +
    `vacation :days ${settings.days}${subject === '' ? '' : ` :subject ${quoted(subject)}`} ${quoted(settings.body)};\r\n`
  );
}

/** The form's fields from a script it wrote, or null for any other script. */
export function vacationSettingsOf(script: string): VacationSettings | null {
  if (!script.startsWith(MARKER)) return null;
  const end = script.indexOf('\r\n');
  try {
    const parsed = JSON.parse(script.slice(MARKER.length, end < 0 ? undefined : end)) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { subject, body, days } = parsed as Record<string, unknown>;
    if (typeof subject !== 'string' || typeof body !== 'string' || typeof days !== 'number') return null;
    // Only a script the form would write itself (not one edited by hand since).
    const settings = { subject, body, days };
    return vacationScript(settings) === script ? settings : null;
  } catch {
    return null;
  }
}
