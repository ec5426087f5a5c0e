import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { LedgerSchema } from './contract';
import { grantKeyViaService } from '../core/defaults';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';

/**
 * The ingestion ledger as the rest of the platform sees it: the pipeline records in it, the time-series loader records
 * loads, the API and the health check read it. Implemented by `IngestionLedger` and by `IngestionLedger.fromLedgerAttributes`.
 */
export interface IIngestionLedger {
  /** The ledger table. */
  readonly table: dynamodb.ITable;
  /** Name of the table. */
  readonly tableName: string;
  /** Lets `grantee` read ledger items and query its indexes (e.g. the API). */
  grantRead(grantee: iam.IGrantable): iam.Grant;
  /** Lets `grantee` query the table and its indexes (newest-first listings), nothing else: no Scan, no GetItem. */
  grantQuery(grantee: iam.IGrantable): iam.Grant;
  /**
   * Lets `grantee` record status transitions: GetItem, PutItem, UpdateItem and Query (table and
   * indexes), no Scan, no delete.
   */
  grantRecord(grantee: iam.IGrantable): iam.Grant;
}

/**
 * A ledger table made elsewhere (another stack, an earlier deployment), with the key that encrypts it.
 */
export interface IngestionLedgerAttributes {
  /** ARN of the DynamoDB table; it must have the ledger's key schema and indexes (see `IngestionLedger`). */
  readonly tableArn: string;
  /** The customer managed key that encrypts the table. */
  readonly encryptionKey: kms.IKey;
}

/**
 * Properties of `IngestionLedger`.
 */
export interface IngestionLedgerProps {
  /** The stage: removal policy and deletion protection come from it. */
  readonly stage: PlatformStage;
  /** The key that encrypts the table (the lake's key in `OnsDataPlatform`). */
  readonly encryptionKey: kms.IKey;
  /**
   * Put the table in an AWS Backup plan (daily backups kept 35 days, monthly kept one year) whose vault is encrypted
   * with `encryptionKey`, besides point-in-time recovery (always on, 35 days): a copy that survives the table's deletion.
   * Backup storage is charged per GB-month.
   *
   * @default - true in the `prod` stage, false in the others
   */
  readonly backup?: boolean;
}

/**
 * The ingestion ledger: a DynamoDB table with one item per source object version (partition key
 * `pk` = `s3://<bucket>/<key>`, sort key `sk` = the version id) recording each status transition
 * (received, processing, processed, loaded, indexed, quarantined, duplicate), the dataset, period,
 * counts, content hash, outputs and error.
 *
 * On-demand capacity, point-in-time recovery, encryption with the platform key, and the stage's
 * removal policy (deletion protection whenever the data is retained). Three indexes, all projecting
 * every attribute: `byContentHash` (finds an already processed copy of the same bytes),
 * `byDataset` and `byStatus` (both sorted by `updatedAt`, for newest-first listings).
 */
export class IngestionLedger extends Construct implements IIngestionLedger {
  /**
   * A ledger that exists already, e.g. `IngestionLedger.fromLedgerAttributes(this, 'Ledger', { tableArn, encryptionKey })`
   * to give a second pipeline or API the ledger of another stack.
   */
  public static fromLedgerAttributes(scope: Construct, id: string, attrs: IngestionLedgerAttributes): IIngestionLedger {
    const table = dynamodb.Table.fromTableAttributes(scope, id, {
      tableArn: attrs.tableArn,
      encryptionKey: attrs.encryptionKey,
      globalIndexes: [LedgerSchema.BY_CONTENT_HASH.name, LedgerSchema.BY_DATASET.name, LedgerSchema.BY_STATUS.name],
    });
    return new LedgerGrants(table, attrs.encryptionKey);
  }

  /** The ledger table. */
  public readonly table: dynamodb.ITable;
  /** Name of the table. */
  public readonly tableName: string;
  /** The backup plan of the table (absent when `backup` is false). */
  public readonly backupPlan?: backup.BackupPlan;
  private readonly grants: LedgerGrants;

  constructor(scope: Construct, id: string, props: IngestionLedgerProps) {
    super(scope, id);
    const table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: LedgerSchema.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LedgerSchema.SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
    });
    for (const index of [LedgerSchema.BY_CONTENT_HASH, LedgerSchema.BY_DATASET, LedgerSchema.BY_STATUS]) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    const removal = applyDataRemovalPolicy(table, props.stage);
    // A retained ledger is also protected from a console or API delete.
    (table.node.defaultChild as dynamodb.CfnTable).deletionProtectionEnabled = removal !== RemovalPolicy.DESTROY;
    if (props.backup ?? props.stage.name === 'prod') {
      this.backupPlan = this.createBackupPlan(table, props.encryptionKey, removal);
    } else {
      Validations.of(table).acknowledge({
        id: 'NIST.800.53.R5-DynamoDBInBackupPlan',
        reason: `Point-in-time recovery (35 days) is on; an AWS Backup plan is opt-in outside prod (\`backup\`), off in '${props.stage.name}'.`,
      });
    }
    this.table = table;
    this.tableName = table.tableName;
    this.grants = new LedgerGrants(table, props.encryptionKey);
  }

  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.grants.grantRead(grantee);
  }

  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    return this.grants.grantQuery(grantee);
  }

  public grantRecord(grantee: iam.IGrantable): iam.Grant {
    return this.grants.grantRecord(grantee);
  }

  /** A vault encrypted with the ledger's key, kept like the table, and a daily + monthly plan over the table. */
  private createBackupPlan(table: dynamodb.Table, key: kms.IKey, removal: RemovalPolicy): backup.BackupPlan {
    const vault = new backup.BackupVault(this, 'BackupVault', { encryptionKey: key, removalPolicy: removal });
    const plan = backup.BackupPlan.dailyMonthly1YearRetention(this, 'BackupPlan', vault);
    const selection = plan.addSelection('Table', { resources: [backup.BackupResource.fromDynamoDbTable(table)] });
    Validations.of(selection).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      reason: 'The role AWS Backup assumes to back up the selected table; AWS documents this managed policy for it.',
    }, {
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'The backup role\'s own policy (KMS for the encrypted table), written by CDK for that role only.',
    });
    return plan;
  }
}

/** The grants of a ledger table and its key, for a table made here or imported. */
class LedgerGrants implements IIngestionLedger {
  public readonly tableName: string;

  constructor(public readonly table: dynamodb.ITable, private readonly encryptionKey: kms.IKey) {
    this.tableName = table.tableName;
  }

  /** Lets `grantee` read ledger items and query its indexes (e.g. the API). */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }

  /** Lets `grantee` query the table and its indexes (newest-first listings), nothing else: no Scan, no GetItem. */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    grantKeyViaService(grantee, this.encryptionKey, 'dynamodb', 'kms:Decrypt');
    return this.table.grant(grantee, 'dynamodb:Query');
  }

  /**
   * Lets `grantee` record status transitions: GetItem, PutItem, UpdateItem and Query (table and
   * indexes), no Scan, no delete.
   */
  public grantRecord(grantee: iam.IGrantable): iam.Grant {
    // DynamoDB uses the table's key on the caller's behalf: explicit actions, no GenerateDataKey*/ReEncrypt* wildcards.
    grantKeyViaService(grantee, this.encryptionKey, 'dynamodb', 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey');
    return this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query');
  }
}
