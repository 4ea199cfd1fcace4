/**
 * A mail user's Sieve filters (docs/sieve.md) and the vacation form: thin calls of storage's Sieve
 * script RPCs, the same ones ManageSieve uses. The `user` role reaches only its own scripts; a
 * domain-admin those of users in their domains (policy.ts `sieve.*`). Every change is audited by
 * the interceptor like any other write.
 */
import { Controller, Inject, Req } from '@nestjs/common';
import { Done, Page, SieveScriptSchema, VacationSchema } from '../api/schemas.js';
import { Type } from '@sinclair/typebox';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import type { HttpRequest } from '../api/http.js';
import { bool, int, objectId, optional, parseObject, required, str } from '../api/validate.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { VACATION_SCRIPT, vacationScript, vacationSettingsOf } from '../sieve-vacation.js';

const userId = (request: HttpRequest): string => objectId()(request.params.id, 'id');

/** RFC 5804 §1.6 names: 1–128 characters, no controls (storage checks them again). */
const NAME = str({
  min: 1,
  max: 128,
  // C0 and C1 controls, LINE SEPARATOR and PARAGRAPH SEPARATOR are refused (RFC 5804 §1.6).
  // eslint-disable-next-line no-control-regex
  pattern: /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/,
  what: 'a name without control characters',
});
const scriptName = (request: HttpRequest): string => NAME(request.params.name, 'name');

/** Storage's limit (docs/sieve.md); checked here too for a clear 400 before the call. */
const MAX_SCRIPT_CHARS = 64 * 1024;

const putBody = {
  name: required(NAME),
  content: required(str({ max: MAX_SCRIPT_CHARS })),
  activate: optional(bool()),
};

const activateBody = { name: required(str({ max: 128 })) };

const setVacationBody = {
  enabled: required(bool()),
  subject: required(str({ max: 200, pattern: /^[^\r\n]*$/, what: 'one line' })),
  body: required(str({ max: 10_000 })),
  days: required(int({ min: 1, max: 365 })),
};

@Controller()
export class SieveController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'GET',
    path: '/users/:id/sieve-scripts',
    action: 'sieve.read',
    target: { kind: 'user-param', param: 'id' },
    summary: "A user's Sieve scripts by name, and which one is active",
    response: Page(SieveScriptSchema),
  })
  async list(@Req() request: HttpRequest) {
    const { scripts } = await this.deps.storage.mailstore.listSieveScripts({ userId: userId(request) });
    return { items: scripts.map((s) => ({ name: s.name, active: s.active })), nextPageToken: '' };
  }

  @Endpoint({
    method: 'GET',
    path: '/users/:id/sieve-scripts/:name',
    action: 'sieve.read',
    target: { kind: 'user-param', param: 'id' },
    summary: 'One Sieve script: its source and whether it is active',
    response: Type.Composite([SieveScriptSchema, Type.Object({ content: Type.String() })]),
  })
  async get(@Req() request: HttpRequest) {
    const id = userId(request);
    const name = scriptName(request);
    const [{ content }, { scripts }] = await Promise.all([
      this.deps.storage.mailstore.getSieveScript({ userId: id, name }),
      this.deps.storage.mailstore.listSieveScripts({ userId: id }),
    ]);
    return { name, content, active: scripts.some((s) => s.name === name && s.active) };
  }

  @Endpoint({
    method: 'POST',
    path: '/users/:id/sieve-scripts',
    action: 'sieve.write',
    target: { kind: 'user-param', param: 'id' },
    summary:
      'Store a Sieve script (new, or replacing one of the same name); an invalid one is a 400 whose message gives the line and column',
    body: putBody,
    response: SieveScriptSchema,
  })
  async put(@Req() request: HttpRequest) {
    const id = userId(request);
    const body = parseObject(request.body, putBody);
    const mailstore = this.deps.storage.mailstore;
    await mailstore.putSieveScript({ userId: id, name: body.name, content: body.content, checkOnly: false });
    if (body.activate === true) await mailstore.setActiveSieveScript({ userId: id, name: body.name });
    const { scripts } = await mailstore.listSieveScripts({ userId: id });
    return { name: body.name, active: scripts.some((s) => s.name === body.name && s.active) };
  }

  @Endpoint({
    method: 'POST',
    path: '/users/:id/sieve-active',
    action: 'sieve.write',
    target: { kind: 'user-param', param: 'id' },
    summary: 'Make a script the active one, or (with an empty name) turn filtering off',
    body: activateBody,
    response: Type.Object({ active: Type.Union([Type.String(), Type.Null()]) }),
  })
  async activate(@Req() request: HttpRequest) {
    const body = parseObject(request.body, activateBody);
    if (body.name !== '') NAME(body.name, 'name');
    await this.deps.storage.mailstore.setActiveSieveScript({ userId: userId(request), name: body.name });
    return { active: body.name === '' ? null : body.name };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/users/:id/sieve-scripts/:name',
    action: 'sieve.write',
    target: { kind: 'user-param', param: 'id' },
    summary: 'Delete a script; the active one cannot be deleted (409: deactivate it first)',
    response: Done('deleted'),
  })
  async remove(@Req() request: HttpRequest) {
    await this.deps.storage.mailstore.deleteSieveScript({
      userId: userId(request),
      name: scriptName(request),
    });
    return { deleted: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/users/:id/vacation',
    action: 'sieve.read',
    target: { kind: 'user-param', param: 'id' },
    summary:
      'The vacation reply form: its fields, whether it is on, and whether the script was changed by hand',
    response: VacationSchema,
  })
  async vacation(@Req() request: HttpRequest) {
    const id = userId(request);
    const { scripts } = await this.deps.storage.mailstore.listSieveScripts({ userId: id });
    const entry = scripts.find((s) => s.name === VACATION_SCRIPT);
    if (entry === undefined) return { enabled: false, subject: '', body: '', days: 7, editedByHand: false };
    const { content } = await this.deps.storage.mailstore.getSieveScript({
      userId: id,
      name: VACATION_SCRIPT,
    });
    const settings = vacationSettingsOf(content);
    if (settings === null)
      return { enabled: entry.active, subject: '', body: '', days: 7, editedByHand: true };
    return { enabled: entry.active, ...settings, editedByHand: false };
  }

  @Endpoint({
    method: 'POST',
    path: '/users/:id/vacation',
    action: 'sieve.write',
    target: { kind: 'user-param', param: 'id' },
    summary:
      'Set the vacation reply (RFC 5230): stored as the script "vacation"; enabled makes it the active script (replacing any other), disabled deactivates it',
    body: setVacationBody,
    response: Type.Composite([
      VacationSchema,
      Type.Object({
        replaced: Type.Union([Type.String(), Type.Null()], {
          description: 'the script that was active before, if another',
        }),
      }),
    ]),
  })
  async setVacation(@Req() request: HttpRequest) {
    const id = userId(request);
    const body = parseObject(request.body, setVacationBody);
    if (body.enabled && body.body.trim() === '')
      throw new ApiError('invalid_argument', 'body: the reply needs a text', 'body');
    const mailstore = this.deps.storage.mailstore;
    const settings = { subject: body.subject, body: body.body, days: body.days };
    await mailstore.putSieveScript({
      userId: id,
      name: VACATION_SCRIPT,
      content: vacationScript(settings),
      checkOnly: false,
    });
    const { scripts } = await mailstore.listSieveScripts({ userId: id });
    const active = scripts.find((s) => s.active)?.name;
    if (body.enabled) await mailstore.setActiveSieveScript({ userId: id, name: VACATION_SCRIPT });
    else if (active === VACATION_SCRIPT) await mailstore.setActiveSieveScript({ userId: id, name: '' });
    return {
      enabled: body.enabled,
      ...settings,
      editedByHand: false,
      // Another script was active and is not any more (one active script per user, RFC 5804).
      replaced: body.enabled && active !== undefined && active !== VACATION_SCRIPT ? active : null,
    };
  }
}
