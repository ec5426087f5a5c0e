import * as iam from 'aws-cdk-lib/aws-iam';

/**
 * A knowledge base as the ingestion pipeline sees it: where to start ingestion jobs.
 */
export interface IKnowledgeBase {
  /** The knowledge base id. */
  readonly knowledgeBaseId: string;
  /** The knowledge base ARN. */
  readonly knowledgeBaseArn: string;
  /** The data source over uploaded documents. */
  readonly documentsDataSourceId: string;
  /** The data source over the data cards the processor writes. */
  readonly cardsDataSourceId: string;
  /** Lets `grantee` start and read ingestion jobs of the knowledge base's data sources. */
  grantIngest(grantee: iam.IGrantable): iam.Grant;
}

/** A knowledge base made elsewhere, for `KnowledgeBase.fromKnowledgeBaseAttributes`. */
export interface KnowledgeBaseAttributes {
  /** The knowledge base ARN (`arn:aws:bedrock:<region>:<account>:knowledge-base/<id>`). */
  readonly knowledgeBaseArn: string;
  /** The data source over uploaded documents. */
  readonly documentsDataSourceId: string;
  /** The data source over the data cards the processor writes. */
  readonly cardsDataSourceId: string;
}

/** The ingestion-job permissions of a knowledge base, made here or imported. @internal */
export function grantIngestionJobs(grantee: iam.IGrantable, knowledgeBaseArn: string): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['bedrock:StartIngestionJob', 'bedrock:GetIngestionJob', 'bedrock:ListIngestionJobs'],
    resourceArns: [knowledgeBaseArn],
  });
}
