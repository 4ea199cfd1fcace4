/**
 * `postmesh`: the admin API for platform teams. Authenticates with an API token
 * (POSTMESH_TOKEN or --token) against POSTMESH_API_URL (or --url); prints tables, or JSON with
 * --json. Exit codes: 0 done, 1 the server refused or failed, 2 usage error.
 */
import { flag, flags, has, parseArgs, UsageError, type ParsedArgs } from './args.js';
import { AdminClient, ApiError } from './client.js';
import { formatTable, type Column } from './table.js';

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const USAGE = `Usage: postmesh <area> <command> [arguments] [--json] [--url URL] [--token TOKEN]

  domain list | show <name> | add <name> [--quota BYTES] | suspend <name> | activate <name>
         delete <name> [--cascade] | dns <name> [--check]
  user   list [--domain D] [--prefix P] [--all] | show <id|address> | add <address> --password P [--name N] [--quota B]
           [--quota-messages N] [--messages-per-hour N] [--recipients-per-message N]
         limits <id|address> [--messages-per-hour N] [--recipients-per-message N]   (0 = the service default)
         quota <id|address> [--bytes B] [--messages N]   (0 = unlimited)
         password <id|address> <new-password> | disable <id|address> | enable <id|address> | delete <id|address> [--purge]
  team   share <owner> <path> --member ADDRESS=RIGHTS ... | acl <owner> <path>
         set <owner> <path> <member> <rights> | remove <owner> <path> <member>
         (a team mailbox: <path> of the account <owner>, e.g. INBOX; a member is a user's address or
          anyone; RFC 4314 rights such as lr, lrs, lrswitea)
  alias  list --domain D | add <address> (--user ID ... | --forward ADDRESS ...) | delete <address>
  dkim   list <domain> | generate <domain> <selector> [--algorithm ed25519|rsa2048] [--activate]
         activate <domain> <key-id> | retire <domain> <key-id>
  webhook list <domain> | add <domain> <url> --event TYPE ... [--disabled] | rotate <domain> <id>
         update <domain> <id> [--url URL] [--event TYPE ...] | enable <domain> <id> | disable <domain> <id>
         delete <domain> <id>   (TYPE: received delivered bounced deferred dead-lettered spam-rejected;
                                 add and rotate print the signing secret, shown only then)
  queue  list [--domain D] [--all] | retry <id> | cancel <id> [--no-dsn]
  trace  (--message-id ID | --queue-id ID | --address A) [--since ISO] [--until ISO] [--all]
  dlq    list [--all] | redrive <seq> | discard <seq>
  kek    status | rewrap     (key-encryption key: keys still under a previous KEK; re-wrap them)

Environment: POSTMESH_API_URL (default http://127.0.0.1:8080), POSTMESH_TOKEN (an API token, pmt_…).
`;

type Row = Record<string, unknown>;

/** A sending limit for the table: 0 is the service default. */
function limitOf(row: Row, key: 'messagesPerHour' | 'recipientsPerMessage'): string | undefined {
  const value = (row.limits as Partial<Record<typeof key, number>> | undefined)?.[key];
  return value === undefined ? undefined : value === 0 ? 'default' : String(value);
}

/** A whole-number flag (a quota: 0 = unlimited), or undefined when absent. */
function countFlag(args: ParsedArgs, name: string): number | undefined {
  const raw = flag(args, name);
  if (raw === undefined) return undefined;
  if (!/^\d{1,13}$/.test(raw)) throw new UsageError(`--${name} needs a whole number (0 = unlimited)`);
  return Number(raw);
}

/** `--member ADDRESS=RIGHTS` (repeatable) → the API's team mailbox members. */
function membersFlags(args: ParsedArgs): { identifier: string; rights: string }[] {
  const members = flags(args, 'member').map((m) => {
    const at = m.lastIndexOf('=');
    if (at <= 0 || at === m.length - 1) throw new UsageError(`--member needs ADDRESS=RIGHTS, not ${m}`);
    return { identifier: m.slice(0, at), rights: m.slice(at + 1) };
  });
  if (members.length === 0) throw new UsageError('team share needs at least one --member ADDRESS=RIGHTS');
  return members;
}

/** `--messages-per-hour` / `--recipients-per-message` → the API's `limits` object (absent flags left out). */
function limitsFlags(args: ParsedArgs): { limits?: Record<string, number> } {
  const limits: Record<string, number> = {};
  for (const [name, key] of [
    ['messages-per-hour', 'messagesPerHour'],
    ['recipients-per-message', 'recipientsPerMessage'],
  ] as const) {
    const raw = flag(args, name);
    if (raw === undefined) continue;
    if (!/^\d{1,7}$/.test(raw))
      throw new UsageError(`--${name} needs a whole number (0 = the service default)`);
    limits[key] = Number(raw);
  }
  return Object.keys(limits).length === 0 ? {} : { limits };
}
const col = (title: string, key: string): Column<Row> => ({ title, value: (r) => r[key] });

const COLUMNS = {
  domain: [
    col('name', 'name'),
    col('status', 'status'),
    col('default quota', 'defaultQuotaBytes'),
    col('created', 'createdAt'),
  ],
  user: [
    col('id', 'id'),
    col('address', 'address'),
    col('name', 'displayName'),
    col('quota', 'quotaBytes'),
    col('status', 'status'),
    { title: 'used bytes', value: (r: Row) => (r.usage as { usedBytes?: number } | null)?.usedBytes },
    { title: 'messages', value: (r: Row) => (r.usage as { messages?: number } | null)?.messages },
    {
      title: 'message limit',
      value: (r: Row) => (r.quotaMessages === 0 ? 'unlimited' : (r.quotaMessages as number | undefined)),
    },
    { title: 'msgs/hour', value: (r: Row) => limitOf(r, 'messagesPerHour') },
    { title: 'rcpts/msg', value: (r: Row) => limitOf(r, 'recipientsPerMessage') },
  ],
  kek: [
    col('current kek', 'currentKekId'),
    { title: 'old user keys', value: (r: Row) => (r.remaining as Record<string, number>).userKeys },
    { title: 'old dkim keys', value: (r: Row) => (r.remaining as Record<string, number>).dkimKeys },
    { title: 'old totp seeds', value: (r: Row) => (r.remaining as Record<string, number>).totpSeeds },
    col('running', 'running'),
    {
      title: 'last re-wrap',
      value: (r: Row) => {
        const last = r.lastRewrap as { finishedAt: string | null; error: string } | null;
        if (last === null) return 'never';
        if (last.error !== '') return `stopped: ${last.error}`;
        return last.finishedAt === null ? 'running' : `finished ${last.finishedAt}`;
      },
    },
  ],
  acl: [col('member', 'identifier'), col('rights', 'rights')],
  alias: [col('id', 'id'), col('address', 'address'), col('kind', 'kind'), col('targets', 'targets')],
  dkim: [
    col('id', 'id'),
    col('selector', 'selector'),
    col('algorithm', 'algorithm'),
    col('status', 'status'),
    col('dns name', 'dnsName'),
  ],
  webhook: [
    col('id', 'id'),
    col('url', 'url'),
    { title: 'events', value: (r: Row) => (r.events as string[]).join(',') },
    col('enabled', 'enabled'),
  ],
  dns: [col('type', 'type'), col('name', 'name'), col('value', 'value'), col('live', 'status')],
  queue: [
    col('id', 'id'),
    col('sender', 'sender'),
    col('recipients', 'recipients'),
    col('attempts', 'attempts'),
    col('next attempt', 'nextAttemptAt'),
    col('last error', 'lastError'),
  ],
  trace: [
    col('time', 'time'),
    col('service', 'service'),
    col('event', 'kind'),
    col('sender', 'sender'),
    col('recipient', 'recipient'),
    col('queue id', 'queueId'),
    col('detail', 'detail'),
  ],
  dlq: [
    col('seq', 'seq'),
    col('time', 'time'),
    col('from', 'originalSubject'),
    col('attempts', 'attempts'),
    col('error', 'error'),
  ],
} as const;

const need = (args: ParsedArgs, index: number, what: string): string => {
  const value = args.positionals[index];
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  return value;
};
const enc = encodeURIComponent;
const webhookPath = (args: ParsedArgs): string =>
  `/domains/${enc(need(args, 2, 'domain'))}/webhooks/${enc(need(args, 3, 'webhook id'))}`;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    io.err(`postmesh: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.positionals.length === 0 || has(args, 'help')) {
    io.out(USAGE);
    return args.positionals.length === 0 && !has(args, 'help') ? 2 : 0;
  }
  const token = flag(args, 'token') ?? env.POSTMESH_TOKEN ?? '';
  const url = flag(args, 'url') ?? env.POSTMESH_API_URL ?? 'http://127.0.0.1:8080';
  if (token === '') {
    io.err(
      'postmesh: no API token: set POSTMESH_TOKEN or pass --token (create one in the console under API tokens)\n',
    );
    return 2;
  }
  const client = new AdminClient(url, token);
  const json = has(args, 'json');
  const show = (value: unknown, columns?: readonly Column<Row>[]): void => {
    if (json || columns === undefined) io.out(`${JSON.stringify(value, null, 2)}\n`);
    else io.out(formatTable(Array.isArray(value) ? (value as Row[]) : [value as Row], columns));
  };
  try {
    await run(args, client, show);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`postmesh: ${error.message}\n${USAGE}`);
      return 2;
    }
    if (error instanceof ApiError) {
      io.err(
        `postmesh: ${error.message} (${error.code}${error.status > 0 ? `, HTTP ${error.status}` : ''})\n`,
      );
      return 1;
    }
    throw error;
  }
}

async function userId(client: AdminClient, idOrAddress: string): Promise<string> {
  if (!idOrAddress.includes('@')) return idOrAddress;
  const domain = idOrAddress.slice(idOrAddress.lastIndexOf('@') + 1);
  const found = await client.list<Row>('/users', { domain, q: idOrAddress }, true);
  const match = found.find((u) => String(u.address).toLowerCase() === idOrAddress.toLowerCase());
  if (match === undefined) throw new ApiError(404, 'not_found', `no user ${idOrAddress}`);
  return String(match.id);
}

async function run(
  args: ParsedArgs,
  client: AdminClient,
  show: (value: unknown, columns?: readonly Column<Row>[]) => void,
): Promise<void> {
  const [area, command] = args.positionals;
  const all = has(args, 'all');
  const key = `${area ?? ''} ${command ?? ''}`;
  switch (key) {
    case 'domain list':
      return show(await client.list<Row>('/domains', {}, true), COLUMNS.domain);
    case 'domain show':
      return show(
        await client.request('GET', `/domains/${enc(need(args, 2, 'domain name'))}`),
        COLUMNS.domain,
      );
    case 'domain add': {
      const quota = flag(args, 'quota');
      return show(
        await client.request('POST', '/domains', {
          name: need(args, 2, 'domain name'),
          ...(quota === undefined ? {} : { defaultQuotaBytes: Number(quota) }),
        }),
        COLUMNS.domain,
      );
    }
    case 'domain suspend':
    case 'domain activate':
      return show(
        await client.request('PATCH', `/domains/${enc(need(args, 2, 'domain name'))}`, {
          status: command === 'suspend' ? 'suspended' : 'active',
        }),
        COLUMNS.domain,
      );
    case 'domain delete':
      return show(
        await client.request(
          'DELETE',
          `/domains/${enc(need(args, 2, 'domain name'))}?cascade=${has(args, 'cascade')}`,
        ),
      );
    case 'domain dns': {
      const dns = await client.request<{ records: Row[] }>(
        'GET',
        `/domains/${enc(need(args, 2, 'domain name'))}/dns?check=${has(args, 'check')}`,
      );
      return show(dns.records, COLUMNS.dns);
    }
    case 'user list':
      return show(
        await client.list<Row>('/users', { domain: flag(args, 'domain'), q: flag(args, 'prefix') }, all),
        COLUMNS.user,
      );
    case 'user show':
      return show(
        await client.request('GET', `/users/${await userId(client, need(args, 2, 'user id or address'))}`),
        COLUMNS.user,
      );
    case 'user add': {
      const password = flag(args, 'password');
      if (password === undefined) throw new UsageError('user add needs --password');
      const quota = flag(args, 'quota');
      const quotaMessages = countFlag(args, 'quota-messages');
      return show(
        await client.request('POST', '/users', {
          address: need(args, 2, 'address'),
          password,
          displayName: flag(args, 'name') ?? '',
          ...(quota === undefined ? {} : { quotaBytes: Number(quota) }),
          ...(quotaMessages === undefined ? {} : { quotaMessages }),
          ...limitsFlags(args),
        }),
        COLUMNS.user,
      );
    }
    case 'user limits': {
      const id = await userId(client, need(args, 2, 'user'));
      const body = limitsFlags(args);
      if (body.limits === undefined)
        throw new UsageError('user limits needs --messages-per-hour and/or --recipients-per-message');
      return show(await client.request('PATCH', `/users/${id}`, body), COLUMNS.user);
    }
    case 'user quota': {
      const id = await userId(client, need(args, 2, 'user'));
      const [bytes, messages] = [countFlag(args, 'bytes'), countFlag(args, 'messages')];
      if (bytes === undefined && messages === undefined)
        throw new UsageError('user quota needs --bytes and/or --messages');
      return show(
        await client.request('PATCH', `/users/${id}`, {
          ...(bytes === undefined ? {} : { quotaBytes: bytes }),
          ...(messages === undefined ? {} : { quotaMessages: messages }),
        }),
        COLUMNS.user,
      );
    }
    case 'team share': {
      const owner = await userId(client, need(args, 2, 'owner'));
      const path = need(args, 3, 'mailbox path');
      const members = membersFlags(args);
      const created = await client.request<{ acl: Row[] }>('POST', `/users/${owner}/team-mailboxes`, {
        path,
        members,
      });
      return show(created.acl, COLUMNS.acl);
    }
    case 'team acl': {
      const owner = await userId(client, need(args, 2, 'owner'));
      const path = need(args, 3, 'mailbox path');
      const found = await client.request<{ acl: Row[] }>(
        'GET',
        `/users/${owner}/team-mailboxes/acl?path=${enc(path)}`,
      );
      return show(found.acl, COLUMNS.acl);
    }
    case 'team set': {
      const owner = await userId(client, need(args, 2, 'owner'));
      return show(
        await client.request('PATCH', `/users/${owner}/team-mailboxes/acl`, {
          path: need(args, 3, 'mailbox path'),
          identifier: need(args, 4, 'member'),
          rights: need(args, 5, 'rights'),
        }),
        COLUMNS.acl,
      );
    }
    case 'team remove': {
      const owner = await userId(client, need(args, 2, 'owner'));
      const path = need(args, 3, 'mailbox path');
      const member = need(args, 4, 'member');
      return show(
        await client.request(
          'DELETE',
          `/users/${owner}/team-mailboxes/acl?path=${enc(path)}&identifier=${enc(member)}`,
        ),
      );
    }
    case 'user password':
      return show(
        await client.request('POST', `/users/${await userId(client, need(args, 2, 'user'))}/password`, {
          password: need(args, 3, 'new password'),
        }),
      );
    case 'user disable':
    case 'user enable':
      return show(
        await client.request('PATCH', `/users/${await userId(client, need(args, 2, 'user'))}`, {
          status: command === 'disable' ? 'disabled' : 'active',
        }),
        COLUMNS.user,
      );
    case 'user delete':
      return show(
        await client.request(
          'DELETE',
          `/users/${await userId(client, need(args, 2, 'user'))}?purge=${has(args, 'purge')}`,
        ),
      );
    case 'kek status':
      return show(await client.request('GET', '/keys/kek'), COLUMNS.kek);
    case 'kek rewrap':
      return show(await client.request('POST', '/keys/kek/rewrap', {}), COLUMNS.kek);
    case 'alias list': {
      const domain = flag(args, 'domain');
      if (domain === undefined) throw new UsageError('alias list needs --domain');
      return show(await client.list<Row>('/aliases', { domain }, all), COLUMNS.alias);
    }
    case 'alias add': {
      const users = flags(args, 'user');
      const forwards = flags(args, 'forward');
      if ((users.length === 0) === (forwards.length === 0))
        throw new UsageError('alias add needs --user ID… or --forward ADDRESS…');
      const ids = await Promise.all(users.map((u) => userId(client, u)));
      return show(
        await client.request('POST', '/aliases', {
          address: need(args, 2, 'address'),
          ...(ids.length > 0 ? { userIds: ids } : { forwardTo: forwards }),
        }),
        COLUMNS.alias,
      );
    }
    case 'alias delete':
      return show(await client.request('DELETE', `/aliases/${enc(need(args, 2, 'address'))}`));
    case 'dkim list':
      return show(
        (await client.request<{ items: Row[] }>('GET', `/domains/${enc(need(args, 2, 'domain'))}/dkim`))
          .items,
        COLUMNS.dkim,
      );
    case 'dkim generate': {
      const algorithm = flag(args, 'algorithm') ?? 'ed25519';
      if (algorithm !== 'ed25519' && algorithm !== 'rsa2048')
        throw new UsageError('--algorithm is ed25519 or rsa2048');
      return show(
        await client.request('POST', `/domains/${enc(need(args, 2, 'domain'))}/dkim`, {
          selector: need(args, 3, 'selector'),
          algorithm,
          activate: has(args, 'activate'),
        }),
        COLUMNS.dkim,
      );
    }
    case 'dkim activate':
    case 'dkim retire':
      return show(
        await client.request(
          'POST',
          `/domains/${enc(need(args, 2, 'domain'))}/dkim/${enc(need(args, 3, 'key id'))}/${command ?? ''}`,
          {},
        ),
        COLUMNS.dkim,
      );
    case 'webhook list':
      return show(
        (await client.request<{ items: Row[] }>('GET', `/domains/${enc(need(args, 2, 'domain'))}/webhooks`))
          .items,
        COLUMNS.webhook,
      );
    case 'webhook add': {
      const events = flags(args, 'event');
      if (events.length === 0) throw new UsageError('webhook add needs --event TYPE (one or more)');
      return show(
        await client.request('POST', `/domains/${enc(need(args, 2, 'domain'))}/webhooks`, {
          url: need(args, 3, 'URL'),
          events,
          enabled: !has(args, 'disabled'),
        }),
        [...COLUMNS.webhook, col('secret (shown once)', 'secret')],
      );
    }
    case 'webhook update': {
      const events = flags(args, 'event');
      const url = flag(args, 'url');
      if (events.length === 0 && url === undefined)
        throw new UsageError('webhook update needs --url and/or --event');
      return show(
        await client.request('PATCH', webhookPath(args), {
          ...(url === undefined ? {} : { url }),
          ...(events.length === 0 ? {} : { events }),
        }),
        COLUMNS.webhook,
      );
    }
    case 'webhook enable':
    case 'webhook disable':
      return show(
        await client.request('PATCH', webhookPath(args), { enabled: command === 'enable' }),
        COLUMNS.webhook,
      );
    case 'webhook rotate':
      return show(await client.request('POST', `${webhookPath(args)}/rotate-secret`, {}), [
        ...COLUMNS.webhook,
        col('secret (shown once)', 'secret'),
      ]);
    case 'webhook delete':
      return show(await client.request('DELETE', webhookPath(args)));
    case 'queue list':
      return show(await client.list<Row>('/queue', { domain: flag(args, 'domain') }, all), COLUMNS.queue);
    case 'queue retry':
      return show(await client.request('POST', `/queue/${enc(need(args, 2, 'queue id'))}/retry`, {}));
    case 'queue cancel':
      return show(
        await client.request(
          'DELETE',
          `/queue/${enc(need(args, 2, 'queue id'))}?dsn=${String(!has(args, 'no-dsn'))}`,
        ),
      );
    case 'trace list':
    case 'trace search':
      return trace(args, client, show, all);
    case 'dlq list':
      return show(await client.list<Row>('/dlq', {}, all), COLUMNS.dlq);
    case 'dlq redrive':
      return show(await client.request('POST', `/dlq/${enc(need(args, 2, 'sequence number'))}/redrive`, {}));
    case 'dlq discard':
      return show(await client.request('DELETE', `/dlq/${enc(need(args, 2, 'sequence number'))}`));
    default:
      if (area === 'trace') return trace(args, client, show, all);
      throw new UsageError(`unknown command: ${key.trim()}`);
  }
}

async function trace(
  args: ParsedArgs,
  client: AdminClient,
  show: (value: unknown, columns?: readonly Column<Row>[]) => void,
  all: boolean,
): Promise<void> {
  const query = {
    messageId: flag(args, 'message-id'),
    queueId: flag(args, 'queue-id'),
    address: flag(args, 'address'),
    start: flag(args, 'since'),
    end: flag(args, 'until'),
  };
  if ([query.messageId, query.queueId, query.address].filter((v) => v !== undefined).length !== 1) {
    throw new UsageError('trace needs exactly one of --message-id, --queue-id, --address');
  }
  show(await client.list<Row>('/trace', query, all), COLUMNS.trace);
}
