import { Fn, Names, Stack } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as aoss from 'aws-cdk-lib/aws-opensearchserverless';
import * as s3vectors from 'aws-cdk-lib/aws-s3vectors';
import { Construct, IConstruct, IDependable } from 'constructs';
import { PlatformStage } from '../core/stage';

/**
 * Field names shared by the vector index and the knowledge base's field mapping (one place, so they
 * always match). The S3 Vectors names are the metadata keys Bedrock writes.
 * @internal
 */
export const VectorFields = {
  /** OpenSearch: the knn_vector field. */
  VECTOR: 'bedrock-knowledge-base-default-vector',
  /** The chunk's text (OpenSearch field; S3 Vectors metadata key). */
  TEXT: 'AMAZON_BEDROCK_TEXT',
  /** Bedrock's own metadata about the chunk (OpenSearch field; S3 Vectors metadata key). */
  METADATA: 'AMAZON_BEDROCK_METADATA',
} as const;

/** Name of the vector index in either store. @internal */
export const VECTOR_INDEX_NAME = 'ons-knowledge';

/**
 * Index names the knowledge base role and the deploying principal may use: every index the knowledge base has had,
 * so the old index stays reachable while CloudFormation replaces it (Bedrock deletes the old data sources' vectors
 * from it, then CloudFormation deletes it).
 */
const INDEX_NAME_PATTERN = `${VECTOR_INDEX_NAME}*`;

/**
 * What a vector store needs to create itself for a knowledge base.
 */
export interface VectorStoreBindOptions {
  /** The stage (defaults such as standby replicas). */
  readonly stage: PlatformStage;
  /** The key that encrypts the vectors. */
  readonly encryptionKey: kms.IKey;
  /** The knowledge base's service role: the store grants it what Bedrock needs to read and write vectors. */
  readonly role: iam.IRole;
  /** The embedding model's dimension: the index's dimension. */
  readonly dimensions: number;
  /**
   * The vector index's name: `ons-knowledge`, with a hash of the embedding model and dimension for any model but
   * the default, so a new model or dimension creates a new index (a replacement) beside the old one.
   *
   * @default 'ons-knowledge'
   */
  readonly indexName?: string;
}

/**
 * A vector store created for a knowledge base.
 */
export interface VectorStoreConfig {
  /** The knowledge base's `StorageConfiguration`. */
  readonly storageConfiguration: bedrock.CfnKnowledgeBase.StorageConfigurationProperty;
  /** What the knowledge base must be created after (the vector index and its policies). */
  readonly dependable: IDependable;
  /** The store's type, e.g. `S3_VECTORS`. */
  readonly type: string;
}

/** Options of `VectorStore.openSearchServerless()`. */
export interface OpenSearchServerlessOptions {
  /**
   * Standby replicas in another Availability Zone (twice the minimum OCUs).
   *
   * @default - false in the DEV stage, true otherwise
   */
  readonly standbyReplicas?: boolean;

  /**
   * The principal that deploys the stack, given access to create, update and delete the index
   * (CloudFormation manages the OpenSearch index with the deploying principal's credentials; it deletes
   * the index with the stack, or when a new embedding dimension replaces it).
   *
   * @default - the CDK bootstrap's CloudFormation execution role when the stack uses the default
   * synthesizer; otherwise this prop is required
   */
  readonly deploymentPrincipalArn?: string;
}

/**
 * Where the knowledge base stores its vectors, chosen with one prop:
 * `vectorStore: VectorStore.s3Vectors()` or `VectorStore.openSearchServerless()`.
 */
export abstract class VectorStore {
  /**
   * Amazon S3 Vectors (the default): a vector bucket encrypted with the platform key and an index of
   * the model's dimension (cosine distance, float32). Pay per vector stored and per query: no idle
   * cost; sub-second queries, no hybrid (keyword) search.
   */
  public static s3Vectors(): VectorStore {
    return new S3VectorsStore();
  }

  /**
   * Amazon OpenSearch Serverless: a VECTORSEARCH collection (KMS encryption policy, network policy
   * without public access that lets Amazon Bedrock in as a source service, data access policy for the
   * knowledge base role and the deploying principal) and an index created by CloudFormation.
   * Millisecond queries and hybrid search, but billed per OCU-hour even when idle (a few hundred
   * dollars a month at the minimum, double with standby replicas).
   */
  public static openSearchServerless(options: OpenSearchServerlessOptions = {}): VectorStore {
    return new OpenSearchServerlessStore(options);
  }

  /** Creates the store under `scope`. */
  public abstract bind(scope: Construct, options: VectorStoreBindOptions): VectorStoreConfig;
}

class S3VectorsStore extends VectorStore {
  public bind(scope: Construct, options: VectorStoreBindOptions): VectorStoreConfig {
    const stack = Stack.of(scope);
    const bucket = new s3vectors.CfnVectorBucket(scope, 'VectorBucket', {
      encryptionConfiguration: { sseType: 'aws:kms', kmsKeyArn: options.encryptionKey.keyArn },
    });
    // S3 Vectors indexes in the background with its own service principal, which must decrypt with the key.
    options.encryptionKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowS3VectorsIndexing',
      principals: [new iam.ServicePrincipal('indexing.s3vectors.amazonaws.com')],
      actions: ['kms:Decrypt'],
      resources: ['*'], // in a key policy, '*' means this key
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
    const index = new s3vectors.CfnIndex(scope, 'VectorIndex', {
      vectorBucketArn: bucket.attrVectorBucketArn,
      indexName: options.indexName ?? VECTOR_INDEX_NAME,
      dataType: 'float32',
      dimension: options.dimensions,
      distanceMetric: 'cosine',
      // Bedrock's text and metadata exceed the filterable-metadata size limit: stored, not filterable.
      metadataConfiguration: { nonFilterableMetadataKeys: [VectorFields.TEXT, VectorFields.METADATA] },
    });
    options.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3vectors:GetIndex', 's3vectors:PutVectors', 's3vectors:GetVectors', 's3vectors:DeleteVectors', 's3vectors:QueryVectors', 's3vectors:ListVectors'],
      resources: [`${bucket.attrVectorBucketArn}/index/${INDEX_NAME_PATTERN}`],
    }));
    options.encryptionKey.grant(options.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    return {
      type: 'S3_VECTORS',
      dependable: index,
      storageConfiguration: {
        type: 'S3_VECTORS',
        s3VectorsConfiguration: { indexArn: index.attrIndexArn },
      },
    };
  }
}

class OpenSearchServerlessStore extends VectorStore {
  constructor(private readonly options: OpenSearchServerlessOptions) {
    super();
  }

  public bind(scope: Construct, options: VectorStoreBindOptions): VectorStoreConfig {
    const stack = Stack.of(scope);
    // Collection and policy names: 3-32 lowercase characters, known at synth (policies name the collection).
    const name = `ons-kb-${Names.uniqueId(scope).toLowerCase().replace(/[^a-z0-9]/g, '').slice(-24)}`;
    const resource = [`collection/${name}`];
    const encryption = new aoss.CfnSecurityPolicy(scope, 'EncryptionPolicy', {
      name,
      type: 'encryption',
      description: 'The knowledge base collection is encrypted with the platform key',
      policy: stack.toJsonString({ Rules: [{ ResourceType: 'collection', Resource: resource }], AWSOwnedKey: false, KmsARN: options.encryptionKey.keyArn }),
    });
    // No public access: only Amazon Bedrock reaches the collection, as an AWS source service.
    const network = new aoss.CfnSecurityPolicy(scope, 'NetworkPolicy', {
      name,
      type: 'network',
      description: 'No public access; Amazon Bedrock only',
      policy: stack.toJsonString([{ Rules: [{ ResourceType: 'collection', Resource: resource }], AllowFromPublic: false, SourceServices: ['bedrock.amazonaws.com'] }]),
    });
    const standby = this.options.standbyReplicas ?? options.stage !== PlatformStage.DEV;
    const collection = new aoss.CfnCollection(scope, 'Collection', {
      name,
      type: 'VECTORSEARCH',
      description: 'ONS data platform knowledge base vectors',
      standbyReplicas: standby ? 'ENABLED' : 'DISABLED',
    });
    collection.node.addDependency(encryption, network);

    const indexName = options.indexName ?? VECTOR_INDEX_NAME;
    const indexResource = [`index/${name}/${INDEX_NAME_PATTERN}`];
    // Two principals, two rule sets. The knowledge base role gets what the Bedrock user guide's data access policy
    // grants a knowledge base role (aoss:DescribeIndex, ReadDocument, WriteDocument on the index: "Set up security
    // configurations for your knowledge base", https://docs.aws.amazon.com/bedrock/latest/userguide/kb-create-security.html).
    // The deploying principal manages AWS::OpenSearchServerless::Index with its own credentials: it creates and updates
    // the index, and deletes it when the stack is deleted or the index replaced (a new dimension), hence aoss:DeleteIndex.
    const access = new aoss.CfnAccessPolicy(scope, 'DataAccessPolicy', {
      name,
      type: 'data',
      description: 'The knowledge base role reads and writes the index; the deploying principal creates, updates and deletes it',
      policy: stack.toJsonString([
        {
          Description: 'Knowledge base role: reads and writes vectors',
          Rules: [{ ResourceType: 'index', Resource: indexResource, Permission: ['aoss:DescribeIndex', 'aoss:ReadDocument', 'aoss:WriteDocument'] }],
          Principal: [options.role.roleArn],
        },
        {
          Description: 'Deploying principal: manages the index (AWS::OpenSearchServerless::Index)',
          Rules: [
            { ResourceType: 'collection', Resource: resource, Permission: ['aoss:DescribeCollectionItems', 'aoss:CreateCollectionItems', 'aoss:UpdateCollectionItems'] },
            { ResourceType: 'index', Resource: indexResource, Permission: ['aoss:CreateIndex', 'aoss:DescribeIndex', 'aoss:UpdateIndex', 'aoss:DeleteIndex'] },
          ],
          Principal: [deploymentPrincipal(scope, this.options.deploymentPrincipalArn)],
        },
      ]),
    });

    const index = new aoss.CfnIndex(scope, 'VectorIndex', {
      collectionEndpoint: collection.attrCollectionEndpoint,
      indexName,
      settings: { index: { knn: true } },
      mappings: {
        properties: {
          [VectorFields.VECTOR]: {
            type: 'knn_vector',
            dimension: options.dimensions,
            method: { name: 'hnsw', engine: 'faiss', spaceType: 'l2' },
          },
          [VectorFields.TEXT]: { type: 'text', index: true },
          [VectorFields.METADATA]: { type: 'text', index: false },
        },
      },
    });
    index.node.addDependency(collection, access);

    options.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['aoss:APIAccessAll'], resources: [collection.attrArn] }));
    return {
      type: 'OPENSEARCH_SERVERLESS',
      dependable: index,
      storageConfiguration: {
        type: 'OPENSEARCH_SERVERLESS',
        opensearchServerlessConfiguration: {
          collectionArn: collection.attrArn,
          vectorIndexName: indexName,
          fieldMapping: { vectorField: VectorFields.VECTOR, textField: VectorFields.TEXT, metadataField: VectorFields.METADATA },
        },
      },
    };
  }
}

function deploymentPrincipal(scope: IConstruct, given: string | undefined): string {
  if (given !== undefined) return given;
  const synthesizer = Stack.of(scope).synthesizer as { cloudFormationExecutionRoleArn?: string };
  const arn = synthesizer.cloudFormationExecutionRoleArn;
  if (typeof arn !== 'string') {
    throw new Error('vectorStore.deploymentPrincipalArn: the stack does not use the default synthesizer; give the principal that deploys it');
  }
  // The default synthesizer's ARN holds ${AWS::...} placeholders.
  return arn.includes('${') ? Fn.sub(arn) : arn;
}
