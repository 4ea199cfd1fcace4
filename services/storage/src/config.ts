import {
  boolean,
  commonSchema,
  type ConfigOf,
  hostPort,
  integer,
  mongodbUri,
  oneOf,
  optionalString,
  port,
  string,
  type ConfigRule,
} from '@postmesh/config';
import { allowListProblems } from './webhooks/destination.js';

/** The databases storage runs on (POSTMESH_STORAGE_DB). */
export const STORAGE_DATABASES = ['mongodb', 'sqlite'] as const;
export type StorageDatabase = (typeof STORAGE_DATABASES)[number];

/** Environment of the storage service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9102),
  /**
   * Storage's database (docs/adr/0011-one-machine-command-budget.md): `mongodb`, a MongoDB replica
   * set (or FerretDB) at MONGODB_URI, production's; `sqlite`, one SQLite file inside this process
   * (POSTMESH_SQLITE_FILE), for one machine: `npm start`'s default. Not POSTMESH_DB_BACKEND,
   * which picks FerretDB's own backend (libs/testing, tools/stack; ADR 0008).
   */
  POSTMESH_STORAGE_DB: oneOf(STORAGE_DATABASES, 'mongodb'),
  /** With POSTMESH_STORAGE_DB=mongodb. */
  MONGODB_URI: mongodbUri('mongodb://127.0.0.1:27017/'),
  /** Database name (DESIGN §4: `postmesh`); with SQLite, the name the database answers to. */
  POSTMESH_MONGODB_DB: string('postmesh', { pattern: /^[A-Za-z0-9_-]{1,63}$/ }),
  /**
   * With POSTMESH_STORAGE_DB=sqlite: the database file (relative to the working directory; its
   * directory is made). Storage replicas on one machine may share it (SQLite locks across
   * processes); it must be on a local filesystem, not NFS.
   */
  POSTMESH_SQLITE_FILE: string('.data/storage/postmesh.sqlite'),
  /**
   * With POSTMESH_STORAGE_DB=sqlite: where writes run. `thread` (default): a worker thread owns
   * the write connection and group-commits, so no commit's fsync waits on the event loop;
   * `inline`: on the event loop (one thread, less CPU per write, each commit's fsync blocks it).
   */
  POSTMESH_SQLITE_WRITER: oneOf(['thread', 'inline'] as const, 'thread'),
  /**
   * Where the partitions' commit pointers live (ADR 0012): `kv`, in the NATS KV record beside the
   * lease (ADR 0007); `database`, in storage's database, a conditional update per confirm instead
   * of a JetStream round trip (SQLite only: FerretDB does not isolate such updates, ADR 0005);
   * `auto` (default): `database` with POSTMESH_STORAGE_DB=sqlite, else `kv`. Every replica of a
   * deployment must use the same.
   */
  POSTMESH_STORAGE_COMMIT_POINTERS: oneOf(['auto', 'kv', 'database'] as const, 'auto'),
  POSTMESH_GRPC_HOST: string('127.0.0.1'),
  POSTMESH_GRPC_PORT: port(7001, { allowZero: true }),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
  /**
   * Where the key-encryption key (KEK) lives (DESIGN §5): `file`, a mounted Secret
   * (POSTMESH_KEK_FILE), or `kms`, an AWS KMS key (POSTMESH_KMS_KEY_ID) that wraps user data keys.
   */
  POSTMESH_KEY_PROVIDER: oneOf(['file', 'kms'], 'file'),
  /** KMS key id, ARN or alias ARN (provider `kms`); credentials from the AWS default chain (IRSA, Pod Identity). */
  POSTMESH_KMS_KEY_ID: optionalString(),
  /** AWS region of the KMS key; default: the region in the key ARN, else AWS_REGION. */
  POSTMESH_KMS_REGION: optionalString(),
  /** KMS endpoint URL (a VPC interface endpoint, or a local KMS in tests); default: the region's. */
  POSTMESH_KMS_ENDPOINT: optionalString(),
  /**
   * File holding the key-encryption key: 32 random bytes in base64 (`openssl rand -base64 32`).
   * Required: without it nothing can be stored encrypted (DESIGN §5). Checked at start by
   * `loadLocalKeyProvider`, which names this variable when it is missing or invalid.
   */
  POSTMESH_KEK_FILE: optionalString(),
  /** The previous KEK during a rotation (unwrap only); remove after `rotateKek` finished. */
  POSTMESH_KEK_PREVIOUS_FILE: optionalString(),
  /** Re-wrap every data key under the current KEK at start (resumable; see docs/adr/0002). */
  POSTMESH_KEK_ROTATE_AT_START: boolean(false),
  /**
   * Inbound jobs of a batch parsed and encrypted at once in the `storage-deliver` consumer (the
   * batch is then committed with one bulk write per collection).
   */
  POSTMESH_DELIVERY_CONCURRENCY: integer(4, { min: 1, max: 256 }),
  /** Inbound jobs committed together at most (docs/adr/0007-storage-ownership-and-write-path.md). */
  POSTMESH_DELIVERY_BATCH: integer(64, { min: 1, max: 1_000 }),
  /** How long the first job of a delivery batch waits for more, in milliseconds. */
  POSTMESH_DELIVERY_BATCH_WAIT_MS: integer(20, { min: 0, max: 10_000 }),
  /**
   * rspamd's controller (e.g. http://127.0.0.1:11334): messages users move into Junk are learned
   * as spam, out of Junk as ham (docs/content-filtering.md). Unset: no learning.
   */
  POSTMESH_RSPAMD_CONTROLLER_URL: optionalString(),
  /**
   * Internal addresses webhooks may still be sent to (docs/webhooks.md): comma-separated IP
   * addresses and CIDR ranges, e.g. `127.0.0.1` or `10.20.0.0/16`. Empty: loopback, private,
   * link-local and reserved destinations are refused.
   */
  POSTMESH_WEBHOOK_ALLOW_ADDRESSES: string(''),
  /** Deliveries of an event before a failing webhook endpoint is given up (and an alert raised). */
  POSTMESH_WEBHOOK_MAX_ATTEMPTS: integer(8, { min: 1, max: 100 }),
  /** First webhook retry delay in milliseconds; doubles per attempt, at most an hour. */
  POSTMESH_WEBHOOK_RETRY_BASE_MS: integer(10_000, { min: 100, max: 3_600_000 }),
  /** How long a webhook endpoint has to answer, in milliseconds. */
  POSTMESH_WEBHOOK_TIMEOUT_MS: integer(10_000, { min: 100, max: 120_000 }),
  /**
   * Messages held by the in-memory mailbox index over all mailboxes (about 50 bytes each; least
   * recently used mailboxes dropped first); 0 turns it off. It answers SELECT and `FETCH (FLAGS)`
   * of large mailboxes without reading message documents (ADR 0006). It is a cache validated by
   * HIGHESTMODSEQ, safe with one storage replica; see the ADR before running several.
   */
  POSTMESH_MAILBOX_INDEX_MESSAGES: integer(1_000_000, { min: 0, max: 100_000_000 }),
  /**
   * Bytes of message summaries (ENVELOPE, the searchable header fields, sent day; about 1 KiB a
   * message) the mailbox index keeps over all mailboxes once messages were opened, so ENVELOPE
   * fetches and header SEARCHes of mailboxes larger than the message cache read nothing back
   * from the database; least recently used mailboxes' summaries go first; 0 keeps none.
   */
  POSTMESH_MAILBOX_INDEX_SUMMARY_BYTES: integer(128 * 1024 * 1024, { min: 0, max: 64 * 1024 * 1024 * 1024 }),
  /**
   * Bytes of message documents (sealed metadata, body references; encrypted as at rest) cached
   * for ENVELOPE/BODYSTRUCTURE fetches and whole-message reads of indexed mailboxes; 0 = off.
   */
  POSTMESH_MESSAGE_CACHE_BYTES: integer(64 * 1024 * 1024, { min: 0, max: 64 * 1024 * 1024 * 1024 }),
  /**
   * Where new message bodies are written (docs/adr/0007): `fs` (files under POSTMESH_BLOB_DIR;
   * one machine, or a volume of the one replica), `s3` (POSTMESH_BLOB_S3_*), `gridfs` (the
   * database; for a real MongoDB). Bodies already stored stay readable where they are.
   */
  POSTMESH_BLOB_STORE: oneOf(['fs', 's3', 'gridfs'] as const, 'fs'),
  /** Root directory of the filesystem blob store. */
  POSTMESH_BLOB_DIR: string('.data/storage/blobs'),
  /**
   * With the `fs` store: where bodies of up to 1 MiB are written. `thread` (default): on a thread
   * of their own, one message to it per body instead of some nine filesystem calls on the event
   * loop (ADR 0012); `loop`: on the event loop through libuv's pool. Larger bodies stream from the
   * loop either way.
   */
  POSTMESH_BLOB_FS_WRITER: oneOf(['thread', 'loop'] as const, 'thread'),
  /**
   * Octets of stored bodies kept in memory after a read or a write, so a message FETCHed again
   * (or soon after it arrived) is not read from the blob store; still encrypted (decrypted on
   * every read, ADR 0002); bodies over 1 MiB are not kept; 0 keeps none.
   */
  POSTMESH_BLOB_READ_CACHE_BYTES: integer(64 * 1024 * 1024, { min: 0, max: 64 * 1024 * 1024 * 1024 }),
  /** Bucket of the S3 blob store; required when POSTMESH_BLOB_STORE=s3. */
  POSTMESH_BLOB_S3_BUCKET: optionalString(),
  /** Key prefix of every body in the bucket. */
  POSTMESH_BLOB_S3_PREFIX: string('bodies/'),
  /** The bucket's region (else the AWS SDK's AWS_REGION). */
  POSTMESH_BLOB_S3_REGION: optionalString(),
  /** An S3-compatible endpoint instead of AWS's, e.g. `http://127.0.0.1:9000`. */
  POSTMESH_BLOB_S3_ENDPOINT: optionalString(),
  /** Address buckets in the path (most S3-compatible services) instead of the host name. */
  POSTMESH_BLOB_S3_FORCE_PATH_STYLE: boolean(false),
  /** How often bodies no message refers to (left by a crash) are looked for; 0 = never. */
  POSTMESH_BLOB_SWEEP_INTERVAL_MS: integer(60 * 60_000, { min: 0, max: 7 * 24 * 3_600_000 }),
  /** Bodies younger than this are never swept: longer than any body's upload. */
  POSTMESH_BLOB_SWEEP_MIN_AGE_MS: integer(60 * 60_000, { min: 60_000, max: 30 * 24 * 3_600_000 }),
  /**
   * How long a successful login is remembered (as a keyed hash, never the password), so the same
   * credentials skip the password hash until then or until any Directory change; 0 = never.
   */
  POSTMESH_AUTH_CACHE_TTL_MS: integer(60_000, { min: 0, max: 3_600_000 }),
  /**
   * How often Sieve ledger records past their use (expired vacation memory, side-effect records
   * older than 45 days, notices of scripts gone) are deleted; 0 = never (docs/sieve.md).
   */
  POSTMESH_SIEVE_LEDGER_SWEEP_INTERVAL_MS: integer(60 * 60_000, { min: 0, max: 7 * 24 * 3_600_000 }),
  /** How long trace events are kept (TTL of `events`). */
  POSTMESH_TRACE_RETENTION_DAYS: integer(30, { min: 1, max: 3650 }),
  /**
   * Who is mailed alerts (a job moved to the dead-letter queue, …): a local address, delivered
   * to its INBOX through MAIL_INBOUND. Unset: alerts are only stored in the trace and logged.
   */
  POSTMESH_POSTMASTER: optionalString(),
  /**
   * Alert notices per alert rule and subject (a domain, a stream, a certificate) and hour;
   * alerts over it are counted in the next notice (docs/alerts.md).
   */
  POSTMESH_ALERT_MAILS_PER_HOUR: integer(10, { min: 1, max: 10_000 }),
  /** Deferrals and bounces to one recipient domain within the window that raise an alert. */
  POSTMESH_ALERT_DELIVERY_FAILURES: integer(10, { min: 1, max: 1_000_000 }),
  POSTMESH_ALERT_DELIVERY_FAILURES_WINDOW_MS: integer(15 * 60_000, { min: 1_000, max: 7 * 24 * 3_600_000 }),
  /** Delivery writes the database refused within the window that raise an alert. */
  POSTMESH_ALERT_STORAGE_WRITE_ERRORS: integer(5, { min: 1, max: 1_000_000 }),
  POSTMESH_ALERT_STORAGE_WRITE_ERRORS_WINDOW_MS: integer(5 * 60_000, { min: 1_000, max: 7 * 24 * 3_600_000 }),
  /** Local stack only: create `example.test` and `demo@example.test` at start. */
  POSTMESH_DEV_SEED: boolean(false),
  /** The demo user's password; required when POSTMESH_DEV_SEED=true. */
  POSTMESH_DEV_PASSWORD: optionalString(),
  /**
   * One owner per mailbox (ADR 0007): take part in the partition leases in NATS KV, publish this
   * replica's gRPC address with them, and drop cached mailbox indexes of partitions that move
   * away; deliver the jobs of the partitions it owns (`mail.inbound.<partition>.<spoolId>`) with
   * commit-then-confirm. smtp-inbound publishes by partition when its own setting is on.
   */
  POSTMESH_STORAGE_OWNERSHIP: boolean(false),
  /** Partitions users are hashed into; fixed for the life of a deployment (changing it moves every user). */
  POSTMESH_STORAGE_PARTITIONS: integer(64, { min: 1, max: 4_096 }),
  /** A replica that stops renewing its lease (crash, pause) loses its partitions after this long. */
  POSTMESH_STORAGE_LEASE_TTL_MS: integer(6_000, { min: 1_000, max: 600_000 }),
  /**
   * With ownership on: how long a job fetched by a replica that then died stays invisible before
   * the partition's next owner gets it (ack_wait of the per-partition consumers). Longer than
   * the slowest batch; a live owner extends it while it works.
   */
  POSTMESH_STORAGE_DELIVERY_ACK_WAIT_MS: integer(30_000, { min: 1_000, max: 600_000 }),
  /**
   * Testing only: with ownership on, each IMAP write waits this long after taking its partition's
   * tag and before writing (logged), so a test can stop the owner holding one (0: never).
   */
  POSTMESH_STORAGE_TEST_HOLD_WRITES_MS: integer(0, { min: 0, max: 60_000 }),
  /**
   * The gRPC address other services reach this replica at, published for routing: `host:port`,
   * or a bare IP or host name (a pod's IP) to which the gRPC port is added; default the host and
   * port it binds.
   */
  POSTMESH_STORAGE_ADVERTISED_GRPC: optionalString(),
  /** Bound on a graceful gRPC stop before in-flight calls are cut. */
  POSTMESH_GRPC_SHUTDOWN_MS: integer(5_000, { min: 0, max: 600_000 }),
};

export type StorageConfig = ConfigOf<typeof schema>;

/** The chosen key provider has what it needs (file contents are checked when the file is read). */
export const rules: readonly ConfigRule<typeof schema>[] = [
  (c) =>
    c.POSTMESH_KEY_PROVIDER === 'kms' && c.POSTMESH_KMS_KEY_ID === undefined
      ? [{ variable: 'POSTMESH_KMS_KEY_ID', problem: 'required when POSTMESH_KEY_PROVIDER=kms' }]
      : [],
  (c) =>
    c.POSTMESH_KEY_PROVIDER === 'file' && c.POSTMESH_KEK_FILE === undefined
      ? [
          {
            variable: 'POSTMESH_KEK_FILE',
            problem:
              'required when POSTMESH_KEY_PROVIDER=file: path of a file holding a base64 32-byte key (e.g. `openssl rand -base64 32`)',
          },
        ]
      : [],
  (c) =>
    c.POSTMESH_KEY_PROVIDER === 'kms' && c.POSTMESH_KEK_FILE !== undefined
      ? [
          {
            variable: 'POSTMESH_KEK_FILE',
            problem:
              'set with POSTMESH_KEY_PROVIDER=kms: during a move from a file KEK to KMS, give the old key as POSTMESH_KEK_PREVIOUS_FILE',
          },
        ]
      : [],
  (c) =>
    c.POSTMESH_STORAGE_COMMIT_POINTERS === 'database' && c.POSTMESH_STORAGE_DB !== 'sqlite'
      ? [
          {
            variable: 'POSTMESH_STORAGE_COMMIT_POINTERS',
            problem: `database pointers need POSTMESH_STORAGE_DB=sqlite (with ${c.POSTMESH_STORAGE_DB}, use kv)`,
          },
        ]
      : [],
  (c) =>
    c.POSTMESH_BLOB_STORE === 'gridfs' && c.POSTMESH_STORAGE_DB !== 'mongodb'
      ? [
          {
            variable: 'POSTMESH_BLOB_STORE',
            problem: `gridfs keeps bodies in MongoDB: it needs POSTMESH_STORAGE_DB=mongodb (with ${c.POSTMESH_STORAGE_DB}, use fs or s3)`,
          },
        ]
      : [],
  (c) =>
    c.POSTMESH_BLOB_STORE === 's3' && (c.POSTMESH_BLOB_S3_BUCKET ?? '') === ''
      ? [{ variable: 'POSTMESH_BLOB_S3_BUCKET', problem: 'required when POSTMESH_BLOB_STORE=s3' }]
      : [],
  (c) => {
    const bad = allowListProblems(webhookAllowList(c.POSTMESH_WEBHOOK_ALLOW_ADDRESSES));
    return bad.length === 0
      ? []
      : [
          {
            variable: 'POSTMESH_WEBHOOK_ALLOW_ADDRESSES',
            problem: `not an IP address or CIDR range: ${bad.join(', ')}`,
          },
        ];
  },
];

/** POSTMESH_WEBHOOK_ALLOW_ADDRESSES as a list. */
export const webhookAllowList = (value: string): string[] =>
  value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
