/**
 * Users' Sieve scripts (RFC 5228), one collection: several named scripts per user, at most one
 * active (the model of ManageSieve, RFC 5804 §1.1). A script is validated when it is stored, so
 * an invalid one is refused with the line and column of the mistake and never becomes active.
 */
import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { checkScript, DEFAULT_MAX_SCRIPT_BYTES } from '@postmesh/sieve';
import { Collections, type SieveScriptDoc } from '../db/schema.js';

export interface SieveScriptLimits {
  readonly maxScriptBytes: number;
  readonly maxScriptsPerUser: number;
}

export const DEFAULT_SIEVE_SCRIPT_LIMITS: SieveScriptLimits = {
  maxScriptBytes: DEFAULT_MAX_SCRIPT_BYTES,
  maxScriptsPerUser: 16,
};

export type PutScriptResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'invalid' | 'quota' | 'name'; readonly message: string };

export interface ActiveScript {
  readonly name: string;
  readonly content: string;
  /** sha256 of the content: the "once" of a broken-script notice is per version. */
  readonly version: string;
}

/** RFC 5804 §1.6: script names are non-empty UTF-8 without controls; we also bound the length. */
export function isValidScriptName(name: string): boolean {
  if (name.length === 0 || name.length > 128) return false;
  // RFC 5804 §1.6: no control characters (Cc), no line or paragraph separators.
  return ![...name].some((c) => {
    const code = c.codePointAt(0) ?? 0;
    return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
  });
}

export class SieveScripts {
  private readonly scripts: Collection<SieveScriptDoc>;

  constructor(
    db: Db,
    private readonly limits: SieveScriptLimits = DEFAULT_SIEVE_SCRIPT_LIMITS,
  ) {
    this.scripts = db.collection<SieveScriptDoc>(Collections.sieveScripts);
  }

  /** Validates and stores (or replaces) a script; an active script stays active. */
  async put(userId: string, name: string, content: string): Promise<PutScriptResult> {
    if (!isValidScriptName(name)) return { ok: false, code: 'name', message: 'invalid script name' };
    const check = checkScript(content, { maxScriptBytes: this.limits.maxScriptBytes });
    if (!check.ok) return { ok: false, code: 'invalid', message: check.error.message };
    const existing = await this.scripts.countDocuments({ userId, name }, { limit: 1 });
    if (existing === 0 && (await this.scripts.countDocuments({ userId })) >= this.limits.maxScriptsPerUser)
      return {
        ok: false,
        code: 'quota',
        message: `at most ${this.limits.maxScriptsPerUser} scripts per user`,
      };
    await this.scripts.updateOne(
      { userId, name },
      {
        $set: { content, version: versionOf(content), updatedAt: new Date() },
        $setOnInsert: { userId, name, active: false },
      },
      { upsert: true },
    );
    return { ok: true };
  }

  async get(userId: string, name: string): Promise<string | null> {
    const doc = await this.scripts.findOne({ userId, name });
    return doc?.content ?? null;
  }

  async list(userId: string): Promise<{ readonly name: string; readonly active: boolean }[]> {
    const docs = await this.scripts.find({ userId }, { projection: { name: 1, active: 1 } }).toArray();
    return docs.map((d) => ({ name: d.name, active: d.active })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Makes `name` the active script, or deactivates all with `null`; false when it does not exist. */
  async setActive(userId: string, name: string | null): Promise<boolean> {
    if (name !== null && (await this.scripts.countDocuments({ userId, name }, { limit: 1 })) === 0)
      return false;
    await this.scripts.updateMany(
      { userId, active: true, ...(name === null ? {} : { name: { $ne: name } }) },
      { $set: { active: false } },
    );
    if (name !== null) await this.scripts.updateOne({ userId, name }, { $set: { active: true } });
    return true;
  }

  /** RFC 5804 §2.10: the active script cannot be deleted. */
  async delete(userId: string, name: string): Promise<'deleted' | 'active' | 'missing'> {
    const doc = await this.scripts.findOne({ userId, name }, { projection: { active: 1 } });
    if (doc === null) return 'missing';
    if (doc.active) return 'active';
    await this.scripts.deleteOne({ userId, name, active: false });
    return 'deleted';
  }

  /** The active script of each of `userIds` that has one (one query per delivery batch job). */
  async active(userIds: readonly string[]): Promise<Map<string, ActiveScript>> {
    const out = new Map<string, ActiveScript>();
    if (userIds.length === 0) return out;
    const docs = await this.scripts.find({ userId: { $in: [...new Set(userIds)] }, active: true }).toArray();
    for (const d of docs) out.set(d.userId, { name: d.name, content: d.content, version: d.version });
    return out;
  }

  async deleteAllOf(userId: string): Promise<void> {
    await this.scripts.deleteMany({ userId });
  }
}

export function versionOf(content: string): string {
  return createHash('sha256').update(content, 'utf8').digest('hex');
}
