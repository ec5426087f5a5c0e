import * as kms from 'aws-cdk-lib/aws-kms';
import { DataLakeLifecycle } from './lifecycle';
import { PlatformStage } from '../platform/stage';

/**
 * Options of a `DataLake` that do not depend on where it is created (also `OnsDataPlatformProps.dataLake`).
 */
export interface DataLakeOptions {
  /**
   * Customer-managed KMS key that encrypts every bucket (and, in `OnsDataPlatform`, every log group and
   * function environment). An imported key's policy must let CloudWatch Logs and S3 server access
   * logging (`logging.s3.amazonaws.com`) use it, since an imported key's policy cannot be changed here.
   *
   * @default - a new key with yearly automatic rotation
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * Lifecycle of the lake's objects; each field set here overrides the stage's value.
   *
   * @default - the stage's lifecycle (`PlatformStage.lifecycle`)
   */
  readonly lifecycle?: DataLakeLifecycle;

  /**
   * Prefix of processed Parquet files in the processed bucket. Must end with `/`.
   *
   * @default 'processed/'
   */
  readonly processedDataPrefix?: string;

  /**
   * Prefix of knowledge-base documents (PDF reports, dictionaries) in the processed bucket. Must end with `/`.
   *
   * @default 'knowledge/documents/'
   */
  readonly documentsPrefix?: string;

  /**
   * Prefix of the data cards (Markdown plus metadata) in the processed bucket. Must end with `/`.
   *
   * @default 'knowledge/cards/'
   */
  readonly dataCardsPrefix?: string;

  /**
   * Prefix of rejected rows in the failed bucket. Must end with `/`.
   *
   * @default 'rejected/'
   */
  readonly rejectedRowsPrefix?: string;

  /**
   * Prefix of quarantined raw files (with their error report) in the failed bucket. Must end with `/`.
   *
   * @default 'quarantine/'
   */
  readonly quarantinePrefix?: string;
}

/**
 * Properties of a `DataLake`.
 */
export interface DataLakeProps extends DataLakeOptions {
  /**
   * Stage whose defaults (lifecycle, removal policy) apply.
   */
  readonly stage: PlatformStage;

  /**
   * Tags added to every resource of the lake, after `Project`, `Stage` and `ManagedBy`
   * (a key given here wins).
   *
   * @default - only the platform tags
   */
  readonly tags?: { [key: string]: string };
}
