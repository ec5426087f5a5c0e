/**
 * What the lake's constructs and every handler that reads or writes the lake share: the environment that
 * names the buckets and prefixes. The layout under the prefixes is the domain core's (`ons/layout.ts`).
 * @internal
 */
export const LakeEnv = {
  /** Processed bucket: Parquet, data cards, copied documents. */
  PROCESSED_BUCKET: 'ONS_PROCESSED_BUCKET',
  /** Failed bucket: rejected rows and quarantined objects. */
  FAILED_BUCKET: 'ONS_FAILED_BUCKET',
  /** Prefixes in the processed bucket (each ends with `/`). */
  PROCESSED_DATA_PREFIX: 'ONS_PROCESSED_DATA_PREFIX',
  DATA_CARDS_PREFIX: 'ONS_DATA_CARDS_PREFIX',
  DOCUMENTS_PREFIX: 'ONS_DOCUMENTS_PREFIX',
  /** Where the processor stages a run's outputs until all are written. */
  STAGING_PREFIX: 'ONS_STAGING_PREFIX',
  /** Where reprocessing runs write their manifest and report (processed bucket). */
  REPORTS_PREFIX: 'ONS_REPORTS_PREFIX',
  /** Raw bucket: where ONS files are dropped (read by the reprocessing selection). */
  RAW_BUCKET: 'ONS_RAW_BUCKET',
  /** Prefixes in the failed bucket (each ends with `/`). */
  REJECTED_ROWS_PREFIX: 'ONS_REJECTED_ROWS_PREFIX',
  QUARANTINE_PREFIX: 'ONS_QUARANTINE_PREFIX',
} as const;
