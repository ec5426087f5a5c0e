import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DataLakeLifecycle } from '../core/lifecycle';
import { PlatformStage } from '../core/stage';

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

  /**
   * Name of the AWS Glue database that holds one table per dataset. Lower-case letters, digits and
   * underscores, starting with a letter, at most 255 characters (what Athena accepts unquoted). Glue
   * database names are unique per account and Region: two lakes of the same stage in one account need
   * different names.
   *
   * @default - `ons_data_platform_<stage name>`, hyphens turned into underscores (e.g. `ons_data_platform_prod`)
   */
  readonly databaseName?: string;

  /**
   * Datasets outside the catalog (files read by the ONS naming convention) that should also get a table.
   * Each one describes the columns its files have; the catalog's datasets always get a table.
   *
   * @default - only the catalog's datasets get a table
   */
  readonly additionalDatasets?: DatasetTableProps[];

  /**
   * Last year the tables' partition projection covers (the first is 2000, where ONS history starts).
   * Athena sees no data in later years until this is raised; raising it is a table-parameter update,
   * nothing is moved. Queries without a year filter list every projected month, so do not set it far
   * beyond need.
   *
   * @default 2050
   */
  readonly projectionEndYear?: number;

  /**
   * Name of the Amazon Athena workgroup. Letters, digits, `.`, `_` and `-`, at most 128 characters;
   * unique per account and Region.
   *
   * @default - `ons-data-platform-<stage name>` (e.g. `ons-data-platform-prod`)
   */
  readonly workGroupName?: string;

  /**
   * Most bytes one Athena query in the workgroup may scan before Athena cancels it. At least
   * 10,000,000 bytes (the Athena minimum).
   *
   * @default - 10 GiB in `PlatformStage.DEV`, 100 GiB in every other stage
   */
  readonly bytesScannedCutoffPerQuery?: number;

  /**
   * Prefix of Athena query results in the processed bucket. Must end with `/` and not overlap the
   * other processed-bucket prefixes.
   *
   * @default 'athena-results/'
   */
  readonly queryResultsPrefix?: string;

  /**
   * Prefix in the processed bucket where the processor stages a run's outputs until all of them are
   * written (no table reads it); they are then copied to their final names. A lifecycle rule expires
   * what a killed run left after `stagingExpirationDays`. Must end with `/` and not overlap the other
   * processed-bucket prefixes.
   *
   * @default 'staging/'
   */
  readonly stagingPrefix?: string;

  /**
   * Prefix in the processed bucket for operational reports: each reprocessing run writes its manifest (the
   * files it selected) and its per-file report under `<reportsPrefix>reprocess/<execution name>/`. No table
   * reads it. Must end with `/` and not overlap the other processed-bucket prefixes.
   *
   * @default 'reports/'
   */
  readonly reportsPrefix?: string;

  /**
   * Days after which objects under `stagingPrefix` expire (a safety net: the next run of the same
   * source removes what a killed run staged).
   *
   * @default 3
   */
  readonly stagingExpirationDays?: number;

  /**
   * Days after which Athena query results expire.
   *
   * @default 30
   */
  readonly queryResultsExpirationDays?: number;

  /**
   * Encrypts this account's AWS Glue Data Catalog in this Region (all of it, not only this lake's
   * database) with the lake key, and Glue connection passwords too. The catalog's encryption
   * settings are a single account-wide resource: only one stack per account and Region may set them,
   * every principal that reads the catalog then needs `kms:Decrypt` on the lake key, and the settings
   * (and the key, which is then always retained) outlive the stack.
   *
   * @default false - the account's Data Catalog encryption settings are left as they are
   */
  readonly encryptDataCatalog?: boolean;

  /**
   * Replicates processed data, data cards and documents to a bucket in another Region.
   *
   * @default - no replication
   */
  readonly replication?: ProcessedDataReplication;
}

/**
 * A measure column of a dataset outside the catalog.
 */
export interface DatasetMeasureProps {
  /**
   * Column name as the processor writes it (normalised: lower case, ASCII, `_` between words).
   */
  readonly name: string;

  /**
   * Unit, shown in the column comment.
   *
   * @default - the comment says the unit is not stated
   */
  readonly unit?: string;

  /**
   * What the measure is, shown in the column comment.
   *
   * @default - the column name
   */
  readonly description?: string;
}

/**
 * The columns of a dataset outside the catalog, as its files have them after normalisation. Every
 * table also has the columns the processor adds: `time`, `local_time`, `source_key`,
 * `source_version` and `source_row`.
 */
export interface DatasetTableProps {
  /**
   * Dataset id, as the processor derives it from the file name (e.g. `restricao_eolica` for
   * `RESTRICAO_EOLICA_2024_01.csv`). It is the table name and the `dataset=` path segment.
   */
  readonly datasetId: string;

  /**
   * Table description.
   *
   * @default - a description naming the dataset
   */
  readonly description?: string;

  /**
   * Identity dimensions (`id_*`, `cod_*` columns).
   *
   * @default - none
   */
  readonly dimensions?: string[];

  /**
   * Descriptive columns (`nom_*` and any other text column).
   *
   * @default - none
   */
  readonly labels?: string[];

  /**
   * Measure columns (`val_*`), stored as double.
   */
  readonly measures: DatasetMeasureProps[];
}

/**
 * Cross-Region replication of the processed bucket. The destination bucket must exist, be versioned,
 * and (in another account) have a bucket policy that lets the replication role replicate into it; the
 * destination key's policy must let the role encrypt with it.
 */
export interface ProcessedDataReplication {
  /**
   * ARN of the destination bucket (`arn:<partition>:s3:::<name>`).
   */
  readonly destinationBucketArn: string;

  /**
   * ARN of the customer-managed KMS key that encrypts the replicas, in the destination bucket's Region
   * (`arn:<partition>:kms:<region>:<account>:key/<id>`). Its Region is the destination Region, which
   * must differ from the lake's.
   */
  readonly destinationKeyArn: string;

  /**
   * Account that owns the destination bucket, when it is not the lake's account. Replicas are then
   * owned by that account (owner override).
   *
   * @default - the destination is in the lake's account
   */
  readonly destinationAccount?: string;

  /**
   * Storage class of the replicas.
   *
   * @default - the storage class of the source object
   */
  readonly storageClass?: s3.StorageClass;

  /**
   * Whether deletions (delete markers) are replicated too. Off, a deletion in the lake leaves the
   * replica readable, which is what a copy kept for recovery is for.
   *
   * @default false
   */
  readonly replicateDeletes?: boolean;
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
