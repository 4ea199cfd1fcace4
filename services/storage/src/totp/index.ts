/**
 * Two-factor sign-in codes (TOTP, RFC 6238) shared by administrators and mail users: the codes
 * themselves (`codes.ts`) and an account's enrolment and one-time use (`enrolment.ts`).
 */
export {
  TOTP_WINDOW,
  base32Decode,
  base32Encode,
  generateTotpSecret,
  hotp,
  matchTotp,
  totpCode,
} from './codes.js';
export { TotpEnrolment, type TotpConfirmation, type TotpFields, type TotpVerdict } from './enrolment.js';
