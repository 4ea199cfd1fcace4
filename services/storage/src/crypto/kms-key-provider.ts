/**
 * The key-encryption key from AWS KMS (DESIGN §5; docs/adr/0002-encryption-at-rest.md). KMS
 * generates the KEK material once (GenerateDataKey, AES_256) and only its KMS-encrypted copy is
 * stored, in the `keyring` collection; each storage replica asks KMS to decrypt that copy at
 * start (Decrypt) and then wraps user data keys locally with it, so a delivery never waits on a
 * KMS call and the plaintext KEK exists only in memory. Credentials come from the AWS SDK's
 * default chain: IRSA (web identity token) or EKS Pod Identity in the chart, environment or
 * profile elsewhere. The encryption context binds the stored copy to Postmesh's KEK, so KMS
 * refuses to decrypt it for any other purpose (and CloudTrail logs show what it is).
 *
 * Moving from a file KEK to KMS is a rotation: start with POSTMESH_KEY_PROVIDER=kms and the old
 * file as POSTMESH_KEK_PREVIOUS_FILE, re-wrap (`rotateKek`), then drop the file.
 */
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { Binary, type Db } from 'mongodb';
import { ConfigError } from '@postmesh/config';
import { KEY_BYTES, bytesOf } from './aead.js';
import { LocalKeyProvider, readKekFile } from './local-key-provider.js';

const ENCRYPTION_CONTEXT = { purpose: 'postmesh-kek' } as const;

interface KmsKekDoc {
  _id: string;
  keyId: string;
  ciphertext: Binary;
  createdAt: Date;
}

export interface KmsKekOptions {
  readonly db: Db;
  readonly keyId: string;
  readonly region?: string | undefined;
  readonly endpoint?: string | undefined;
  /** POSTMESH_KEK_PREVIOUS_FILE: a file KEK still readable during the move to KMS. */
  readonly previousKekFile?: string | undefined;
  /** For tests; otherwise a client built from region, endpoint and the default credential chain. */
  readonly client?: KMSClient;
}

/** `arn:aws:kms:<region>:…` names its region; a bare key id or alias does not. */
export function regionOf(keyId: string): string | undefined {
  return /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(keyId)?.[1];
}

export function kmsClient(options: Pick<KmsKekOptions, 'keyId' | 'region' | 'endpoint'>): KMSClient {
  const region = options.region ?? regionOf(options.keyId) ?? process.env.AWS_REGION;
  if (region === undefined) {
    throw new ConfigError([
      {
        variable: 'POSTMESH_KMS_REGION',
        problem: 'required: the key id names no region and AWS_REGION is unset',
      },
    ]);
  }
  return new KMSClient({ region, ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }) });
}

/**
 * The KEK for `keyId`: the stored copy decrypted by KMS, or (first start) new material from KMS,
 * stored before use. Two replicas starting at once both generate; the first insert wins and the
 * other decrypts the winner's copy, so every replica uses the same KEK.
 */
export async function loadKmsKeyProvider(options: KmsKekOptions): Promise<LocalKeyProvider> {
  const client = options.client ?? kmsClient(options);
  const keks = options.db.collection<KmsKekDoc>('keyring');
  const id = `kms-kek:${options.keyId}`;
  let stored = await keks.findOne({ _id: id });
  let material: Uint8Array | undefined;
  if (stored === null) {
    const generated = await client.send(
      new GenerateDataKeyCommand({
        KeyId: options.keyId,
        KeySpec: 'AES_256',
        EncryptionContext: ENCRYPTION_CONTEXT,
      }),
    );
    if (generated.Plaintext === undefined || generated.CiphertextBlob === undefined) {
      throw new Error('KMS GenerateDataKey returned no key material');
    }
    try {
      await keks.insertOne({
        _id: id,
        keyId: options.keyId,
        ciphertext: new Binary(generated.CiphertextBlob),
        createdAt: new Date(),
      });
      material = generated.Plaintext;
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      stored = await keks.findOne({ _id: id });
    }
  }
  if (material === undefined) {
    if (stored === null) throw new Error(`KEK ${id} vanished while starting`);
    const decrypted = await client.send(
      new DecryptCommand({
        CiphertextBlob: bytesOf(stored.ciphertext),
        KeyId: options.keyId,
        EncryptionContext: ENCRYPTION_CONTEXT,
      }),
    );
    if (decrypted.Plaintext === undefined) throw new Error('KMS Decrypt returned no key material');
    material = decrypted.Plaintext;
  }
  if (material.length !== KEY_BYTES) throw new Error(`KMS returned a ${material.length}-byte KEK`);
  const previous =
    options.previousKekFile === undefined
      ? []
      : [readKekFile('POSTMESH_KEK_PREVIOUS_FILE', options.previousKekFile)];
  return new LocalKeyProvider(material, previous);
}
