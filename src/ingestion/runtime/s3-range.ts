import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SourceObject } from '../../ledger/contract';
import { RandomAccess } from '../../ons/readers/zip';

/** One object version as RandomAccess: each read is one ranged GetObject (the router reads a workbook's directory this way). */
export function s3RandomAccess(s3: S3Client, source: SourceObject, size: number): RandomAccess {
  return {
    size: async () => size,
    read: async (position, length) => {
      const end = Math.min(position + length, size) - 1;
      if (end < position) return new Uint8Array(0);
      const response = await s3.send(new GetObjectCommand({
        Bucket: source.bucket, Key: source.key, VersionId: source.versionId, Range: `bytes=${position}-${end}`,
      }));
      return response.Body!.transformToByteArray();
    },
  };
}
