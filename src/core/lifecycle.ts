/**
 * Lifecycle of the data lake's objects, in days. In a `PlatformStage` every field is set; in
 * `DataLakeProps.lifecycle` every field is optional and overrides the stage's value.
 *
 * S3 moves an object to Standard-IA no sooner than 30 days after creation and out of Standard-IA
 * no sooner than 30 days later, so the transitions must respect those gaps.
 */
export interface DataLakeLifecycle {
  /**
   * Days after upload when raw files move to S3 Standard-IA (at least 30).
   *
   * @default - the stage's value: 30
   */
  readonly rawInfrequentAccessAfterDays?: number;

  /**
   * Days after upload when raw files move to S3 Glacier Instant Retrieval (at least 30 after Standard-IA).
   *
   * @default - the stage's value: 90
   */
  readonly rawGlacierInstantRetrievalAfterDays?: number;

  /**
   * Days after upload when raw files move to S3 Glacier Deep Archive (after Glacier Instant Retrieval).
   *
   * @default - the stage's value: 365
   */
  readonly rawDeepArchiveAfterDays?: number;

  /**
   * Days after writing when processed Parquet files move to S3 Standard-IA (at least 30). Data cards
   * and knowledge-base documents stay in S3 Standard: the knowledge base re-reads them at every sync.
   *
   * @default - the stage's value: 30
   */
  readonly processedInfrequentAccessAfterDays?: number;

  /**
   * Days after which quarantined files and rejected rows in the failed bucket expire.
   *
   * @default - the stage's value: 30 (DEV), 365 (STAGING), 2555 = 7 years (PROD)
   */
  readonly failedExpirationDays?: number;

  /**
   * Days after which S3 server access logs expire.
   *
   * @default - the stage's value: 30 (DEV), 90 (STAGING, PROD)
   */
  readonly accessLogsExpirationDays?: number;

  /**
   * Days after which noncurrent object versions expire, in every bucket.
   *
   * @default - the stage's value: 7 (DEV), 30 (STAGING), 90 (PROD)
   */
  readonly noncurrentVersionExpirationDays?: number;

  /**
   * Days after which incomplete multipart uploads are aborted, in every bucket.
   *
   * @default - the stage's value: 1 (DEV), 7 (STAGING, PROD)
   */
  readonly abortIncompleteMultipartUploadDays?: number;
}

const FIELDS: ReadonlyArray<keyof DataLakeLifecycle> = [
  'rawInfrequentAccessAfterDays',
  'rawGlacierInstantRetrievalAfterDays',
  'rawDeepArchiveAfterDays',
  'processedInfrequentAccessAfterDays',
  'failedExpirationDays',
  'accessLogsExpirationDays',
  'noncurrentVersionExpirationDays',
  'abortIncompleteMultipartUploadDays',
];

/** Minimum days in S3 Standard before, and in Standard-IA after, a transition to Standard-IA. */
const STANDARD_IA_MINIMUM_DAYS = 30;

/**
 * Throws an error naming the field when a lifecycle is invalid.
 * @internal
 */
export function validateLifecycle(where: string, lifecycle: DataLakeLifecycle, options: { complete: boolean }): void {
  for (const field of FIELDS) {
    const value = lifecycle[field];
    if (value === undefined) {
      if (options.complete) throw new Error(`${where}.${field}: required, got undefined`);
      continue;
    }
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`${where}.${field}: expected a whole number of days of at least 1, got ${value}`);
    }
  }
  const ia = lifecycle.rawInfrequentAccessAfterDays;
  const gir = lifecycle.rawGlacierInstantRetrievalAfterDays;
  const deep = lifecycle.rawDeepArchiveAfterDays;
  for (const [field, value] of [['rawInfrequentAccessAfterDays', ia], ['processedInfrequentAccessAfterDays', lifecycle.processedInfrequentAccessAfterDays]] as const) {
    if (value !== undefined && value < STANDARD_IA_MINIMUM_DAYS) {
      throw new Error(`${where}.${field}: S3 moves objects to Standard-IA no sooner than ${STANDARD_IA_MINIMUM_DAYS} days, got ${value}`);
    }
  }
  if (ia !== undefined && gir !== undefined && gir < ia + STANDARD_IA_MINIMUM_DAYS) {
    throw new Error(`${where}.rawGlacierInstantRetrievalAfterDays (${gir}) must come at least ${STANDARD_IA_MINIMUM_DAYS} days after rawInfrequentAccessAfterDays (${ia}): S3 keeps objects in Standard-IA for 30 days before the next transition`);
  }
  if (gir !== undefined && deep !== undefined && deep <= gir) {
    throw new Error(`${where}.rawDeepArchiveAfterDays (${deep}) must come after rawGlacierInstantRetrievalAfterDays (${gir})`);
  }
}

/**
 * The stage's lifecycle with the given overrides applied, validated as a whole.
 * @internal
 */
export function resolveLifecycle(base: DataLakeLifecycle, overrides: DataLakeLifecycle | undefined, where: string): Required<DataLakeLifecycle> {
  if (overrides) validateLifecycle(where, overrides, { complete: false });
  const merged = { ...base } as Record<string, number | undefined>;
  for (const field of FIELDS) {
    const value = overrides?.[field];
    if (value !== undefined) merged[field] = value;
  }
  validateLifecycle(where, merged, { complete: true });
  return merged as Required<DataLakeLifecycle>;
}
