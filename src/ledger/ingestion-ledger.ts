import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { LedgerSchema } from './contract';
import { applyDataRemovalPolicy } from '../core/removal';
import { PlatformStage } from '../core/stage';

/**
 * Properties of `IngestionLedger`.
 */
export interface IngestionLedgerProps {
  /** The stage: removal policy and deletion protection come from it. */
  readonly stage: PlatformStage;
  /** The key that encrypts the table (the lake's key in `OnsDataPlatform`). */
  readonly encryptionKey: kms.IKey;
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
export class IngestionLedger extends Construct {
  /** The ledger table. */
  public readonly table: dynamodb.ITable;
  /** Name of the table. */
  public readonly tableName: string;
  private readonly encryptionKey: kms.IKey;

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
    this.table = table;
    this.tableName = table.tableName;
    this.encryptionKey = props.encryptionKey;
  }

  /** Lets `grantee` read ledger items and query its indexes (e.g. the API). */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }

  /** Lets `grantee` query the table and its indexes (newest-first listings), nothing else: no Scan, no GetItem. */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey.grant(grantee, 'kms:Decrypt');
    return this.table.grant(grantee, 'dynamodb:Query');
  }

  /**
   * Lets `grantee` record status transitions: GetItem, PutItem, UpdateItem and Query (table and
   * indexes), no Scan, no delete.
   */
  public grantRecord(grantee: iam.IGrantable): iam.Grant {
    // DynamoDB uses the table's key on the caller's behalf: explicit actions, no GenerateDataKey*/ReEncrypt* wildcards.
    this.encryptionKey.grant(grantee, 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey');
    return this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query');
  }
}
