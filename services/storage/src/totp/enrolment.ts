/**
 * Two-factor sign-in (TOTP, RFC 6238) for any account kept in a collection: administrators and
 * mail users share these rules, each with its own KEK wrapping context (DESIGN §5: secrets are
 * encrypted the same way, and KEK rotation re-wraps them). A begun enrolment changes nothing until
 * it is confirmed with a current code, and a code works once.
 */
import type { Collection, ObjectId } from 'mongodb';
import type { KeyProvider } from '../crypto/types.js';
import type { TotpClaimDoc, WrappedKey } from '../db/schema.js';
import { isDuplicateKey } from '../directory/result.js';
import { TOTP_WINDOW, base32Encode, generateTotpSecret, matchTotp } from './codes.js';

/** The fields an account document keeps for TOTP. */
export interface TotpFields {
  _id: ObjectId;
  /** The confirmed seed, wrapped by the KEK. */
  totpSecret?: WrappedKey;
  totpEnabled?: boolean;
  /** A seed from `begin`, not yet confirmed (same wrapping). */
  pendingTotpSecret?: WrappedKey;
  /** The last step whose code was accepted: that code, and older ones, are refused. */
  totpLastStep?: number;
  updatedAt: Date;
}

/** What a sign-in's TOTP code amounts to. */
export type TotpVerdict = 'not-enrolled' | 'accepted' | 'missing' | 'wrong';

export type TotpConfirmation<Doc> =
  { readonly kind: 'ok'; readonly account: Doc } | { readonly kind: 'no-enrolment' | 'wrong' | 'changed' };

export class TotpEnrolment<Doc extends TotpFields> {
  private readonly accounts: Collection<TotpFields>;

  constructor(
    private readonly deps: {
      readonly accounts: Collection<Doc>;
      /** The used codes of every account (`Collections.totpClaims`). */
      readonly claims: Collection<TotpClaimDoc>;
      readonly keyProvider: KeyProvider;
      /** The KEK wrapping context of an account's seed, e.g. `user-totp:<id>`. */
      readonly context: (id: string) => string;
      /** The account name authenticator apps show (`Postmesh:<label>`). */
      readonly label: (account: Doc) => string;
      readonly now: () => Date;
    },
  ) {
    // Every query below touches only the TotpFields, which every Doc has.
    this.accounts = deps.accounts as unknown as Collection<TotpFields>;
  }

  /** A new seed, stored as pending; returned once, in base32 and as an otpauth:// URI. */
  async begin(account: Doc): Promise<{ secretBase32: string; otpauthUri: string }> {
    const seed = generateTotpSecret();
    const wrapped = await this.deps.keyProvider.wrap(seed, this.deps.context(account._id.toHexString()));
    await this.accounts.updateOne(
      { _id: account._id },
      { $set: { pendingTotpSecret: wrapped, updatedAt: this.deps.now() } },
    );
    const secretBase32 = base32Encode(seed);
    seed.fill(0);
    const label = encodeURIComponent(`Postmesh:${this.deps.label(account)}`);
    return {
      secretBase32,
      otpauthUri: `otpauth://totp/${label}?secret=${secretBase32}&issuer=Postmesh&algorithm=SHA1&digits=6&period=30`,
    };
  }

  /**
   * Turns TOTP on when `code` matches the pending seed. `no-enrolment` when none was begun,
   * `wrong` for a code that does not match, `changed` when the pending seed was replaced meanwhile
   * (a new enrolment or a KEK rotation re-wrapping it): read the account again.
   */
  async confirm(account: Doc, code: string): Promise<TotpConfirmation<Doc>> {
    const pending = account.pendingTotpSecret;
    if (pending === undefined) return { kind: 'no-enrolment' };
    const seed = await this.deps.keyProvider.unwrap(pending, this.deps.context(account._id.toHexString()));
    const now = this.deps.now();
    const step = matchTotp(seed, code.trim(), now);
    seed.fill(0);
    if (step === undefined) return { kind: 'wrong' };
    // Compare-and-set on the pending wrapping, so a stale wrapping is never stored as the seed.
    const updated = await this.accounts.findOneAndUpdate(
      { _id: account._id, 'pendingTotpSecret.by': pending.by, 'pendingTotpSecret.iv': pending.iv },
      {
        $set: { totpSecret: pending, totpEnabled: true, totpLastStep: step, updatedAt: now },
        $unset: { pendingTotpSecret: '' },
      },
      { returnDocument: 'after' },
    );
    return updated === null ? { kind: 'changed' } : { kind: 'ok', account: updated as unknown as Doc };
  }

  /** Turns TOTP off and forgets the seeds; `null` when the account is gone. */
  async disable(id: ObjectId): Promise<Doc | null> {
    // A later enrolment starts with no used codes (its seed's codes are not the old seed's).
    await this.deps.claims.deleteMany({ account: this.deps.context(id.toHexString()) });
    const updated = await this.accounts.findOneAndUpdate(
      { _id: id },
      {
        $set: { totpEnabled: false, updatedAt: this.deps.now() },
        $unset: { totpSecret: '', totpLastStep: '', pendingTotpSecret: '' },
      },
      { returnDocument: 'after' },
    );
    return updated as unknown as Doc | null;
  }

  /**
   * Checks a sign-in's code. A code works once (RFC 6238 §5.2: the verifier MUST NOT accept the
   * second attempt of an OTP after a successful validation). Two guards: codes of steps up to
   * the last accepted one no longer match (`totpLastStep`), which refuses a later replay; and the
   * step is claimed by inserting `<account>:<step>` with a unique `_id`, so of two sign-ins racing
   * with one code exactly one gets through. The insert is atomic on FerretDB too, where a
   * compare-and-set update on the account is not isolated (ADR 0005).
   */
  async verify(account: Doc, code: string): Promise<TotpVerdict> {
    if (account.totpEnabled !== true || account.totpSecret === undefined) return 'not-enrolled';
    if (code.trim() === '') return 'missing';
    const subject = this.deps.context(account._id.toHexString());
    const seed = await this.deps.keyProvider.unwrap(account.totpSecret, subject);
    const now = this.deps.now();
    const step = matchTotp(seed, code.trim(), now, account.totpLastStep ?? -1);
    seed.fill(0);
    if (step === undefined) return 'wrong';
    try {
      await this.deps.claims.insertOne({ _id: `${subject}:${step}`, account: subject, step, at: now });
    } catch (error) {
      if (isDuplicateKey(error)) return 'wrong';
      throw error;
    }
    // Only ever forward: a slower sign-in with an older step must not lower it.
    await this.accounts.updateOne(
      { _id: account._id, $or: [{ totpLastStep: { $lt: step } }, { totpLastStep: { $exists: false } }] },
      { $set: { totpLastStep: step } },
    );
    // Claims of steps that no code can match any more are of no use.
    await this.deps.claims.deleteMany({ account: subject, step: { $lt: step - 2 * TOTP_WINDOW } });
    return 'accepted';
  }
}
