import {
  compileScript,
  runScript,
  sieveMessageFromRaw,
  type SieveAction,
  type SieveLimits,
  type SieveMessage,
} from '../src/index.js';

export const MESSAGE = [
  'Return-Path: <owner-ietf-mta-filters@imc.org>',
  'From: Tim Showalter <tjs@example.edu>',
  'To: Alice <alice@example.com>, "Bob B." <bob@example.org>',
  'Cc: team: carol@example.net, dave@EXAMPLE.net;',
  'Sender: owner-ietf-mta-filters@imc.org',
  'Subject: =?UTF-8?Q?Caf=C3=A9?= plans: make lots of money fast',
  'Date: Mon, 1 Dec 2025 10:00:00 +0000',
  'Message-ID: <orig-1@example.edu>',
  'X-Caffeine: C8H10N4O2',
  '',
  'Hello,',
  'the project schedule is attached.',
  '',
].join('\r\n');

export function message(
  raw: string = MESSAGE,
  envelope = { from: 'tjs@example.edu', to: 'alice@example.com' },
): SieveMessage {
  return sieveMessageFromRaw(Buffer.from(raw, 'utf8'), envelope);
}

/** Compile and run; the actions of a successful run (throws on a runtime error). */
export function actions(script: string, msg: SieveMessage = message(), limits?: SieveLimits): SieveAction[] {
  const result = runScript(compileScript(script), msg, limits);
  if (!result.ok) throw new Error(`runtime error: ${result.error}`);
  return [...result.actions];
}

/** A script's verdict on a test expression: "yes" when it holds. */
export function holds(require: string, test: string, msg: SieveMessage = message()): boolean {
  const list = actions(
    `require ["fileinto"${require === '' ? '' : `, ${require}`}]; if ${test} { fileinto "yes"; }`,
    msg,
  );
  return list.some((a) => a.kind === 'fileinto' && a.mailbox === 'yes');
}

export const IMPLICIT_KEEP: SieveAction = { kind: 'keep', flags: [], implicit: true };
