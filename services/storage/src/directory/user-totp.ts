/**
 * Two-factor sign-in for mail users: TOTP (RFC 6238) with the same parameters and code rules as
 * administrators' (../admin/totp.ts). The seed is wrapped by the KEK with the context
 * `user-totp:<userId>` (DESIGN §5: secrets are encrypted the same way) and re-wrapped by KEK
 * rotation. A begun enrolment changes nothing until it is confirmed with a current code.
 */
import type { Collection } from 'mongodb';
import type { KeyProvider } from '../crypto/index.js';
import { userTotpContext } from '../crypto/user-keyring.js';
import type { UserDoc } from '../db/schema.js';
import { base32Encode, generateTotpSecret, matchTotp } from '../admin/totp.js';

/** What a sign-in's TOTP code amounts to for a user. */
export type TotpVerdict = 'not-enrolled' | 'accepted' | 'missing' | 'wrong';

export class UserTotp {
  constructor(
    private readonly deps: {
      readonly users: Collection<UserDoc>;
      readonly keyProvider: KeyProvider;
      readonly now: () => Date;
    },
  ) {}

  /** A new seed, stored as pending; returned once, in base32 and as an otpauth:// URI. */
  async begin(user: UserDoc): Promise<{ secretBase32: string; otpauthUri: string }> {
    const seed = generateTotpSecret();
    const wrapped = await this.deps.keyProvider.wrap(seed, userTotpContext(user._id.toHexString()));
    await this.deps.users.updateOne(
      { _id: user._id },
      { $set: { pendingTotpSecret: wrapped, updatedAt: this.deps.now() } },
    );
    const secretBase32 = base32Encode(seed);
    seed.fill(0);
    const label = encodeURIComponent(`Postmesh:${user.address}`);
    return {
      secretBase32,
      otpauthUri: `otpauth://totp/${label}?secret=${secretBase32}&issuer=Postmesh&algorithm=SHA1&digits=6&period=30`,
    };
  }

  /**
   * Turns TOTP on when `code` matches the pending seed. `no-enrolment` when none was begun,
   * `wrong` for a code that does not match, `changed` when the pending seed was replaced
   * meanwhile (a new enrolment or a KEK rotation): begin again.
   */
  async confirm(
    user: UserDoc,
    code: string,
  ): Promise<{ kind: 'ok'; user: UserDoc } | { kind: 'no-enrolment' | 'wrong' | 'changed' }> {
    const pending = user.pendingTotpSecret;
    if (pending === undefined) return { kind: 'no-enrolment' };
    const seed = await this.deps.keyProvider.unwrap(pending, userTotpContext(user._id.toHexString()));
    const now = this.deps.now();
    const step = matchTotp(seed, code.trim(), now);
    seed.fill(0);
    if (step === undefined) return { kind: 'wrong' };
    // Compare-and-set on the pending wrapping, as for administrators (admin-store.ts).
    const updated = await this.deps.users.findOneAndUpdate(
      { _id: user._id, 'pendingTotpSecret.by': pending.by, 'pendingTotpSecret.iv': pending.iv },
      {
        $set: { totpSecret: pending, totpEnabled: true, totpLastStep: step, updatedAt: now },
        $unset: { pendingTotpSecret: '' },
      },
      { returnDocument: 'after' },
    );
    return updated === null ? { kind: 'changed' } : { kind: 'ok', user: updated };
  }

  async disable(user: UserDoc): Promise<UserDoc | null> {
    return this.deps.users.findOneAndUpdate(
      { _id: user._id },
      {
        $set: { totpEnabled: false, updatedAt: this.deps.now() },
        $unset: { totpSecret: '', totpLastStep: '', pendingTotpSecret: '' },
      },
      { returnDocument: 'after' },
    );
  }

  /**
   * Checks a sign-in's code. A code works once (RFC 6238 §5.2): the step it matched is recorded
   * with a compare-and-set, so two concurrent sign-ins with the same code cannot both pass.
   */
  async verify(user: UserDoc, code: string): Promise<TotpVerdict> {
    if (user.totpEnabled !== true || user.totpSecret === undefined) return 'not-enrolled';
    if (code.trim() === '') return 'missing';
    const seed = await this.deps.keyProvider.unwrap(user.totpSecret, userTotpContext(user._id.toHexString()));
    const step = matchTotp(seed, code.trim(), this.deps.now(), user.totpLastStep ?? -1);
    seed.fill(0);
    if (step === undefined) return 'wrong';
    const claimed = await this.deps.users.updateOne(
      { _id: user._id, totpLastStep: user.totpLastStep ?? { $exists: false } },
      { $set: { totpLastStep: step } },
    );
    return claimed.modifiedCount === 1 ? 'accepted' : 'wrong';
  }
}
