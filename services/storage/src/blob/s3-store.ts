/**
 * Bodies as objects in an S3 bucket (the chart's EKS profile), or any S3-compatible service.
 *
 * Keys: `<prefix><id[0,4)>/<id[4,6)>/<id>`, the filesystem store's layout, so keys sort by id
 * (ids are ObjectIds, time first) and the sweeper lists a time window with one ranged listing.
 * S3 acknowledges a PUT (or the completion of a multipart upload) only once the object is
 * stored durably and is then readable by every reader (strong read-after-write consistency), so
 * `put` resolves after that acknowledgement and needs nothing more. Bodies up to PART_BYTES go
 * in one PUT; larger ones as a multipart upload, aborted when the body fails midway.
 * Credentials come from the AWS SDK's default chain (environment, web identity on EKS, …).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import {
  BlobNotFoundError,
  blobChunks,
  checkBlobId,
  isBlobId,
  type BlobListRange,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './types.js';

/** Bodies larger than this go up in parts of this size (S3's minimum part is 5 MiB). */
export const PART_BYTES = 8 * 1024 * 1024;

export interface S3BlobStoreOptions {
  readonly bucket: string;
  /** Prepended to every key, e.g. `postmesh/bodies/`. */
  readonly prefix: string;
  readonly region?: string;
  /** An S3-compatible endpoint instead of AWS's (`http://127.0.0.1:9000`). */
  readonly endpoint?: string;
  /** `bucket` in the path instead of the host name (most S3-compatible services). */
  readonly forcePathStyle?: boolean;
  /** Static credentials (tests); otherwise the SDK's default chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

function errorName(error: unknown): string | undefined {
  return (error as { name?: string } | undefined)?.name;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = errorName(error);
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(error) === 404;
}

export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.client = new S3Client({
      ...(options.region === undefined ? {} : { region: options.region }),
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    });
  }

  keyOf(blobId: string): string {
    checkBlobId(blobId);
    return `${this.prefix}${blobId.slice(0, 4)}/${blobId.slice(4, 6)}/${blobId}`;
  }

  private idOf(key: string | undefined): string | undefined {
    if (key === undefined || !key.startsWith(this.prefix)) return undefined;
    const id = key.slice(key.lastIndexOf('/') + 1);
    return isBlobId(id) && key === this.keyOf(id) ? id : undefined;
  }

  async put(blobId: string, data: BlobSource): Promise<BlobStat> {
    const Key = this.keyOf(blobId);
    const Bucket = this.bucket;
    let held: Buffer[] = [];
    let heldBytes = 0;
    let size = 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];
    const uploadPart = async (): Promise<void> => {
      uploadId ??= (await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key }))).UploadId;
      const PartNumber = parts.length + 1;
      const body = Buffer.concat(held);
      held = [];
      heldBytes = 0;
      const { ETag } = await this.client.send(
        new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body: body }),
      );
      parts.push({ ETag, PartNumber });
    };
    try {
      for await (const chunk of blobChunks(data)) {
        held.push(Buffer.from(chunk));
        heldBytes += chunk.length;
        size += chunk.length;
        if (heldBytes >= PART_BYTES) await uploadPart();
      }
      if (uploadId === undefined) {
        const Body = Buffer.concat(held);
        await this.client.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: Body.length }));
      } else {
        if (heldBytes > 0) await uploadPart();
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      }
    } catch (error) {
      if (uploadId !== undefined) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      }
      throw error;
    }
    return { size, writtenAt: new Date() };
  }

  async read(blobId: string, range: ByteRange): Promise<Buffer> {
    const Key = this.keyOf(blobId);
    const start = Math.max(0, range.start);
    if (range.end <= start) {
      if ((await this.stat(blobId)) === null) throw new BlobNotFoundError(blobId, this.kind);
      return Buffer.alloc(0);
    }
    try {
      const res = await this.client.send(
        // RFC 9110 §14.1.2: the last-byte-pos is inclusive.
        new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${start}-${range.end - 1}` }),
      );
      if (res.Body === undefined) return Buffer.alloc(0);
      return Buffer.from(await res.Body.transformToByteArray());
    } catch (error) {
      if (isNotFound(error)) throw new BlobNotFoundError(blobId, this.kind, { cause: error });
      // RFC 9110 §15.5.17: 416 when the range starts past the end.
      if (errorName(error) === 'InvalidRange' || httpStatus(error) === 416) return Buffer.alloc(0);
      throw error;
    }
  }

  async stat(blobId: string): Promise<BlobStat | null> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(blobId) }),
      );
      return { size: head.ContentLength ?? 0, writtenAt: head.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(blobId: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(blobId) }));
  }

  async *list(range: BlobListRange): AsyncGenerator<string> {
    let ContinuationToken: string | undefined;
    const StartAfter = range.after === undefined ? undefined : this.keyOf(range.after);
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix,
          ...(ContinuationToken === undefined ? {} : { ContinuationToken }),
          ...(StartAfter === undefined ? {} : { StartAfter }),
        }),
      );
      for (const object of page.Contents ?? []) {
        const id = this.idOf(object.Key);
        if (id === undefined || id <= (range.after ?? '')) continue;
        // Keys sort by id: nothing after this one is in the range.
        if (id >= range.before) return;
        yield id;
      }
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (ContinuationToken !== undefined);
  }

  /** Aborts multipart uploads of bodies in `range` that never completed (a crash mid-upload). */
  async removeAbandonedWrites(range: BlobListRange): Promise<number> {
    let removed = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: this.prefix,
          ...(KeyMarker === undefined ? {} : { KeyMarker }),
          ...(UploadIdMarker === undefined ? {} : { UploadIdMarker }),
        }),
      );
      for (const upload of page.Uploads ?? []) {
        const id = this.idOf(upload.Key);
        if (id === undefined || id <= (range.after ?? '') || id >= range.before) continue;
        await this.client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: upload.Key,
            UploadId: upload.UploadId,
          }),
        );
        removed++;
      }
      if (page.IsTruncated !== true) return removed;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}
