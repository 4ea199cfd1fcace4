/** How numbers, sizes and times are shown. */
import { type User } from './types.js';

/** "120 messages/hour, 25 recipients/message", with "default" where the service default applies. */
export function limitsText(u: User): string {
  const { messagesPerHour: perHour, recipientsPerMessage: perMessage } = u.limits;
  return `${perHour === 0 ? 'default' : perHour} messages/hour, ${perMessage === 0 ? 'default' : perMessage} recipients/message`;
}

/** The limits typed into a form → the API's `limits` object (empty fields are left out). */
export function limitsBody(v: Record<string, string>): { limits?: Record<string, number> } {
  const limits: Record<string, number> = {};
  if (v.messagesPerHour) limits.messagesPerHour = Number(v.messagesPerHour);
  if (v.recipientsPerMessage) limits.recipientsPerMessage = Number(v.recipientsPerMessage);
  return Object.keys(limits).length === 0 ? {} : { limits };
}

/** 1536 → "1.5 KiB" (binary units, as quotas are set). */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown =
    unit === 0 || value >= 100 || Number.isInteger(value) ? Math.round(value).toString() : value.toFixed(1);
  return `${shown} ${units[unit] ?? 'bytes'}`;
}

/** "12.3 KiB of 1.0 MiB (1%), 3 messages" — the users screen's usage cell. */
export function usageText(u: User): string {
  if (u.usage === null) return '—';
  const { usedBytes, quotaBytes, messages, quotaMessages } = u.usage;
  const percent = (used: number, limit: number) => Math.min(100, Math.round((used / limit) * 100));
  const of =
    quotaBytes === 0 ? ' (no limit)' : ` of ${formatBytes(quotaBytes)} (${percent(usedBytes, quotaBytes)}%)`;
  const count =
    quotaMessages === 0
      ? `${messages} ${messages === 1 ? 'message' : 'messages'}`
      : `${messages} of ${quotaMessages} messages (${percent(messages, quotaMessages)}%)`;
  return `${formatBytes(usedBytes)}${of}, ${count}`;
}

/** A time in the browser's zone, saying which zone (people compare it with logs from elsewhere). */
export const when = (iso: string | null | undefined): string =>
  iso
    ? new Date(iso).toLocaleString(undefined, {
        year: 'numeric',
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        timeZoneName: 'short',
      })
    : '—';
