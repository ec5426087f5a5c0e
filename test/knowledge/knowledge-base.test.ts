import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  ChunkingStrategy, DataLake, EmbeddingModel, IngestionPipeline, KnowledgeBase, KnowledgeBaseOptions, OnsDataPlatform, PlatformMonitoring,
  PlatformStage, VectorStore,
} from '../../src';
import { KnowledgeBaseLogMetrics, metricsNamespace } from '../../src/runtime/contract';
import { ENV } from '../helpers';
import { definitionOf } from '../ingestion/asl';

// asl-validator ships CommonJS without types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

function kbStack(options: KnowledgeBaseOptions = {}, stage = PlatformStage.DEV, withPipeline = false) {
  const app = new App();
  const stack = new Stack(app, 'Knowledge', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage });
  const knowledgeBase = new KnowledgeBase(stack, 'Kb', { ...options, stage, dataLake });
  const pipeline = withPipeline
    ? new IngestionPipeline(stack, 'Ingestion', { stage, dataLake, knowledgeBase, largeFileProcessing: { enabled: false } })
    : undefined;
  const template = Template.fromStack(stack);
  return { stack, knowledgeBase, pipeline, template, json: template.toJSON() as { Resources: Record<string, any> } };
}

function onlyResource(json: { Resources: Record<string, any> }, type: string): [string, any] {
  const found = Object.entries(json.Resources).filter(([, r]) => r.Type === type);
  expect(found).toHaveLength(1);
  return found[0];
}

function rolePolicyStatements(json: { Resources: Record<string, any> }, roleIdPrefix: string): any[] {
  return Object.values(json.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref?.startsWith(roleIdPrefix)))
    .flatMap((r) => r.Properties.PolicyDocument.Statement);
}

const s3v = kbStack();
const aoss = kbStack({ vectorStore: VectorStore.openSearchServerless(), embeddingModel: EmbeddingModel.titanTextV2({ dimensions: 512 }) });

describe('S3 Vectors (default)', () => {
  test('a KMS vector bucket and a cosine float32 index of the model dimension, Bedrock text fields non-filterable', () => {
    s3v.template.hasResourceProperties('AWS::S3Vectors::VectorBucket', {
      EncryptionConfiguration: { SseType: 'aws:kms', KmsKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LakeKey'), 'Arn'] } },
    });
    s3v.template.hasResourceProperties('AWS::S3Vectors::Index', {
      Dimension: 1024,
      DistanceMetric: 'cosine',
      DataType: 'float32',
      MetadataConfiguration: { NonFilterableMetadataKeys: ['AMAZON_BEDROCK_TEXT', 'AMAZON_BEDROCK_METADATA'] },
    });
  });

  test('the knowledge base: VECTOR, Titan V2 with 1024 dimensions, S3_VECTORS on the index, created after the index', () => {
    const [, kb] = onlyResource(s3v.json, 'AWS::Bedrock::KnowledgeBase');
    const [indexId] = onlyResource(s3v.json, 'AWS::S3Vectors::Index');
    expect(kb.DependsOn).toContain(indexId);
    const vector = kb.Properties.KnowledgeBaseConfiguration.VectorKnowledgeBaseConfiguration;
    expect(kb.Properties.KnowledgeBaseConfiguration.Type).toBe('VECTOR');
    expect(JSON.stringify(vector.EmbeddingModelArn)).toContain('foundation-model/amazon.titan-embed-text-v2:0');
    expect(vector.EmbeddingModelConfiguration.BedrockEmbeddingModelConfiguration.Dimensions).toBe(1024);
    expect(kb.Properties.StorageConfiguration).toEqual({
      Type: 'S3_VECTORS', S3VectorsConfiguration: { IndexArn: { 'Fn::GetAtt': [indexId, 'IndexArn'] } },
    });
  });

  test('the S3 Vectors indexing principal may decrypt with the lake key', () => {
    s3v.template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'AllowS3VectorsIndexing', Principal: { Service: 'indexing.s3vectors.amazonaws.com' }, Action: 'kms:Decrypt' })]) },
    });
  });
});

describe('OpenSearch Serverless', () => {
  const collectionName = () => onlyResource(aoss.json, 'AWS::OpenSearchServerless::Collection')[1].Properties.Name as string;

  test('a VECTORSEARCH collection after its encryption (lake key) and network (not public, Bedrock only) policies', () => {
    const [collectionId, collection] = onlyResource(aoss.json, 'AWS::OpenSearchServerless::Collection');
    expect(collection.Properties.Type).toBe('VECTORSEARCH');
    const policies = Object.entries(aoss.json.Resources).filter(([, r]) => r.Type === 'AWS::OpenSearchServerless::SecurityPolicy');
    expect(collection.DependsOn).toEqual(expect.arrayContaining(policies.map(([id]) => id)));
    const byType = Object.fromEntries(policies.map(([, r]) => [r.Properties.Type, r.Properties.Policy]));
    const encryption = JSON.stringify(byType.encryption);
    expect(encryption).toContain('\\"AWSOwnedKey\\":false');
    expect(encryption).toMatch(/LakeKey/);
    const network = JSON.parse(byType.network);
    expect(network).toEqual([{ Rules: [{ ResourceType: 'collection', Resource: [`collection/${collectionName()}`] }], AllowFromPublic: false, SourceServices: ['bedrock.amazonaws.com'] }]);
    expect(collectionId).toBeDefined();
  });

  test('the data access policy: the knowledge base role reads and writes the index; the deploying principal also deletes it', () => {
    const [, access] = onlyResource(aoss.json, 'AWS::OpenSearchServerless::AccessPolicy');
    // The policy is a Fn::Join of JSON text and tokens: tokens become names, then it parses.
    const [, parts] = access.Properties.Policy['Fn::Join'] as [string, unknown[]];
    const text = parts.map((p) => {
      if (typeof p === 'string') return p;
      const json = JSON.stringify(p);
      if (/"KbRole[0-9A-F]+","Arn"/.test(json)) return 'KB_ROLE';
      if (/cfn-exec-role/.test(json)) return 'DEPLOYER';
      throw new Error(`unexpected token ${json}`);
    }).join('');
    // Every index name the knowledge base has had: the old one stays usable while CloudFormation replaces it.
    const index = `index/${collectionName()}/ons-knowledge*`;
    expect(JSON.parse(text)).toEqual([
      {
        Description: expect.any(String),
        Rules: [{ ResourceType: 'index', Resource: [index], Permission: ['aoss:DescribeIndex', 'aoss:ReadDocument', 'aoss:WriteDocument'] }],
        Principal: ['KB_ROLE'],
      },
      {
        Description: expect.any(String),
        Rules: [
          { ResourceType: 'collection', Resource: [`collection/${collectionName()}`], Permission: ['aoss:DescribeCollectionItems', 'aoss:CreateCollectionItems', 'aoss:UpdateCollectionItems'] },
          { ResourceType: 'index', Resource: [index], Permission: ['aoss:CreateIndex', 'aoss:DescribeIndex', 'aoss:UpdateIndex', 'aoss:DeleteIndex'] },
        ],
        Principal: ['DEPLOYER'],
      },
    ]);
  });

  test('the index: knn vector of the model dimension, and the same field names as the knowledge base mapping; the KB depends on it', () => {
    const [indexId, index] = onlyResource(aoss.json, 'AWS::OpenSearchServerless::Index');
    const [, kb] = onlyResource(aoss.json, 'AWS::Bedrock::KnowledgeBase');
    expect(kb.DependsOn).toContain(indexId);
    const config = kb.Properties.StorageConfiguration.OpensearchServerlessConfiguration;
    expect(kb.Properties.StorageConfiguration.Type).toBe('OPENSEARCH_SERVERLESS');
    expect(config.VectorIndexName).toBe(index.Properties.IndexName);
    const mapping = config.FieldMapping;
    const properties = index.Properties.Mappings.Properties;
    expect(Object.keys(properties).sort()).toEqual([mapping.VectorField, mapping.TextField, mapping.MetadataField].sort());
    expect(properties[mapping.VectorField]).toMatchObject({ Type: 'knn_vector', Dimension: 512 });
    const embedding = kb.Properties.KnowledgeBaseConfiguration.VectorKnowledgeBaseConfiguration.EmbeddingModelConfiguration;
    expect(embedding.BedrockEmbeddingModelConfiguration.Dimensions).toBe(512);
    expect(index.Properties.Settings.Index.Knn).toBe(true);
    expect(index.DependsOn).toEqual(expect.arrayContaining([onlyResource(aoss.json, 'AWS::OpenSearchServerless::AccessPolicy')[0]]));
  });

  test.each([
    [PlatformStage.DEV.name, PlatformStage.DEV, 'DISABLED'], [PlatformStage.STAGING.name, PlatformStage.STAGING, 'ENABLED'], [PlatformStage.PROD.name, PlatformStage.PROD, 'ENABLED'],
  ])('standby replicas in %s', (_name, stage, expected) => {
    kbStack({ vectorStore: VectorStore.openSearchServerless() }, stage).template
      .hasResourceProperties('AWS::OpenSearchServerless::Collection', { StandbyReplicas: expected });
  });

  test('standby replicas can be overridden', () => {
    kbStack({ vectorStore: VectorStore.openSearchServerless({ standbyReplicas: true }) }).template
      .hasResourceProperties('AWS::OpenSearchServerless::Collection', { StandbyReplicas: 'ENABLED' });
  });

  test('the role may call the collection only', () => {
    const statements = rolePolicyStatements(aoss.json, 'KbRole');
    const aossStatement = statements.find((s) => s.Action === 'aoss:APIAccessAll');
    expect(aossStatement.Resource).toEqual({ 'Fn::GetAtt': [onlyResource(aoss.json, 'AWS::OpenSearchServerless::Collection')[0], 'Arn'] });
  });
});

describe('data sources', () => {
  test('two S3 sources over the processed bucket (documents, cards) with the lake key and fixed-size chunking by default', () => {
    for (const prefix of ['knowledge/documents/', 'knowledge/cards/']) {
      s3v.template.hasResourceProperties('AWS::Bedrock::DataSource', {
        DataSourceConfiguration: {
          Type: 'S3',
          S3Configuration: { BucketArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LakeProcessedBucket'), 'Arn'] }, InclusionPrefixes: [prefix] },
        },
        ServerSideEncryptionConfiguration: { KmsKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LakeKey'), 'Arn'] } },
        VectorIngestionConfiguration: {
          ChunkingConfiguration: { ChunkingStrategy: 'FIXED_SIZE', FixedSizeChunkingConfiguration: { MaxTokens: 300, OverlapPercentage: 20 } },
        },
      });
    }
  });

  test.each([
    [ChunkingStrategy.semantic({ maxTokens: 400 }), { ChunkingStrategy: 'SEMANTIC', SemanticChunkingConfiguration: { MaxTokens: 400, BufferSize: 0, BreakpointPercentileThreshold: 95 } }],
    [ChunkingStrategy.hierarchical(), {
      ChunkingStrategy: 'HIERARCHICAL',
      HierarchicalChunkingConfiguration: { LevelConfigurations: [{ MaxTokens: 1500 }, { MaxTokens: 300 }], OverlapTokens: 60 },
    }],
    [ChunkingStrategy.fixedSize({ maxTokens: 500, overlapPercentage: 10 }), { ChunkingStrategy: 'FIXED_SIZE', FixedSizeChunkingConfiguration: { MaxTokens: 500, OverlapPercentage: 10 } }],
  ])('chunking %#', (chunking, expected) => {
    kbStack({ chunking }).template.hasResourceProperties('AWS::Bedrock::DataSource', {
      VectorIngestionConfiguration: { ChunkingConfiguration: expected },
    });
  });
});

describe('service role', () => {
  const statements = rolePolicyStatements(s3v.json, 'KbRole');

  test('no wildcard action; InvokeModel on the embedding model only', () => {
    for (const s of statements) for (const a of [s.Action].flat()) expect(a).not.toContain('*');
    const invoke = statements.filter((s) => [s.Action].flat().includes('bedrock:InvokeModel'));
    expect(invoke).toHaveLength(1);
    expect(JSON.stringify(invoke[0].Resource)).toMatch(/foundation-model\/amazon\.titan-embed-text-v2:0"\]\]\}$/);
  });

  test('ListBucket with prefix conditions, GetObject on the two prefixes, KMS on the lake key, vectors on the index only', () => {
    const list = statements.find((s) => s.Action === 's3:ListBucket');
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['knowledge/documents/*', 'knowledge/cards/*'] } });
    const get = statements.find((s) => s.Action === 's3:GetObject');
    expect(JSON.stringify(get.Resource)).toContain('/knowledge/documents/*');
    expect(JSON.stringify(get.Resource)).toContain('/knowledge/cards/*');
    const kms = statements.find((s) => [s.Action].flat().includes('kms:Decrypt'));
    expect(kms.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^LakeKey/), 'Arn'] });
    const vectors = statements.find((s) => [s.Action].flat().includes('s3vectors:PutVectors'));
    expect(vectors.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [onlyResource(s3v.json, 'AWS::S3Vectors::VectorBucket')[0], 'VectorBucketArn'] }, '/index/ons-knowledge*']] });
  });

  test('trusted by Bedrock for knowledge bases of this account only', () => {
    s3v.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({
          Principal: { Service: 'bedrock.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' }, ArnLike: { 'aws:SourceArn': Match.anyValue() } },
        })],
      },
    });
  });
});

describe('grants', () => {
  test('grantQuery: Retrieve and RetrieveAndGenerate on the KB, InvokeModel on the given generation model; grantIngest: ingestion jobs', () => {
    const stack = new Stack(new App(), 'Grants', { env: ENV });
    const knowledgeBase = new KnowledgeBase(stack, 'Kb', { stage: PlatformStage.DEV, dataLake: new DataLake(stack, 'Lake', { stage: PlatformStage.DEV }) });
    const role = new iam.Role(stack, 'Api', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    knowledgeBase.grantQuery(role, 'arn:aws:bedrock:sa-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0');
    knowledgeBase.grantIngest(role);
    const statements = rolePolicyStatements(Template.fromStack(stack).toJSON() as any, 'Api');
    expect(statements).toEqual(expect.arrayContaining([
      expect.objectContaining({ Action: 'bedrock:Retrieve', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^Kb/), 'KnowledgeBaseArn'] } }),
      expect.objectContaining({ Action: 'bedrock:RetrieveAndGenerate', Resource: '*' }),
      expect.objectContaining({ Action: expect.arrayContaining(['bedrock:InvokeModel']), Resource: 'arn:aws:bedrock:sa-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0' }),
      expect.objectContaining({ Action: ['bedrock:StartIngestionJob', 'bedrock:GetIngestionJob', 'bedrock:ListIngestionJobs'] }),
    ]));
  });
});

describe('query function', () => {
  test('RetrieveAndGenerate over this knowledge base with the generation model, results and template; validated props', () => {
    const { json } = kbStack({ generationModel: 'us.amazon.nova-pro-v1:0', numberOfResults: 8, promptTemplate: 'Answer from $search_results$.' });
    const [, fn] = Object.entries(json.Resources).find(([, r]) => r.Type === 'AWS::Lambda::Function' && /RAG/.test(r.Properties.Description))!;
    expect(fn.Properties.Timeout).toBe(29);
    const env = fn.Properties.Environment.Variables;
    expect(env.ONS_KB_ID).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Kb/), 'KnowledgeBaseId'] });
    expect(env.ONS_KB_RESULTS).toBe('8');
    expect(env.ONS_KB_PROMPT_TEMPLATE).toBe('Answer from $search_results$.');
    expect(JSON.stringify(env.ONS_KB_MODEL_ARN)).toContain(':inference-profile/us.amazon.nova-pro-v1:0');
    const statements = rolePolicyStatements(json, 'KbQueryRole');
    expect(statements.find((x) => x.Action === 'bedrock:Retrieve')).toBeDefined();
    expect(JSON.stringify(statements.find((x) => [x.Action].flat().includes('bedrock:InvokeModel')).Resource)).toContain('inference-profile/us.amazon.nova-pro-v1:0');
    expect(() => kbStack({ numberOfResults: 0 })).toThrow(/numberOfResults/);
    expect(() => kbStack({ promptTemplate: 'no placeholder' })).toThrow(/promptTemplate/);
    expect(() => kbStack({ generationModel: 'not a model' })).toThrow(/generationModel/);
  });

  test('defaults: Amazon Nova Lite as a foundation model, 5 results, the handler\'s template', () => {
    const [, fn] = Object.entries(s3v.json.Resources).find(([, r]) => r.Type === 'AWS::Lambda::Function' && /RAG/.test(r.Properties.Description))!;
    const env = fn.Properties.Environment.Variables;
    expect(JSON.stringify(env.ONS_KB_MODEL_ARN)).toContain('::foundation-model/amazon.nova-lite-v1:0');
    expect(env.ONS_KB_RESULTS).toBe('5');
    expect(env.ONS_KB_PROMPT_TEMPLATE).toBeUndefined();
  });
});

describe('the default generation model runs where the stack is', () => {
  function modelIn(region: string | undefined) {
    const app = new App();
    const stack = new Stack(app, 'Knowledge', region ? { env: { account: '111111111111', region } } : {});
    const kb = new KnowledgeBase(stack, 'Kb', { stage: PlatformStage.DEV, dataLake: new DataLake(stack, 'Lake', { stage: PlatformStage.DEV }) });
    const json = Template.fromStack(stack).toJSON() as { Resources: Record<string, any> };
    const [, fn] = Object.entries(json.Resources).find(([, r]) => r.Type === 'AWS::Lambda::Function' && /RAG/.test(r.Properties.Description))!;
    const invoke = rolePolicyStatements(json, 'KbQueryRole').find((x) => [x.Action].flat().includes('bedrock:InvokeModel'));
    const modelArn = JSON.stringify(stack.resolve(fn.Properties.Environment.Variables.ONS_KB_MODEL_ARN));
    return { stack, kb, modelArn, invoke: JSON.stringify(invoke.Resource) };
  }

  test('us-east-1: the foundation model itself, and only it', () => {
    const { modelArn, invoke } = modelIn('us-east-1');
    expect(modelArn).toContain(':bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0');
    expect(invoke).not.toContain('inference-profile');
  });

  test.each([['eu-west-1', 'eu', 'eu-central-1'], ['us-west-2', 'us', 'us-east-2'], ['ap-southeast-2', 'apac', 'ap-northeast-1']])(
    '%s: the %s. inference profile, with Nova Lite in the Regions it routes to', (region, geography, other) => {
      const { modelArn, invoke } = modelIn(region);
      expect(modelArn).toContain(`:bedrock:${region}:111111111111:inference-profile/${geography}.amazon.nova-lite-v1:0`);
      expect(invoke).toContain(`inference-profile/${geography}.amazon.nova-lite-v1:0`);
      expect(invoke).toContain(`:bedrock:${other}::foundation-model/amazon.nova-lite-v1:0`);
      expect(invoke).not.toContain('bedrock:*');
    });

  test('sa-east-1: a warning that names generationModel and where Nova Lite runs; a model of the user\'s choice, none', () => {
    const { stack, modelArn } = modelIn('sa-east-1');
    expect(modelArn).toContain(':bedrock:sa-east-1::foundation-model/amazon.nova-lite-v1:0');
    Annotations.fromStack(stack).hasWarning('/Knowledge/Kb', Match.stringLikeRegexp(
      '^generationModel: the default amazon\\.nova-lite-v1:0 is not documented to run .* in sa-east-1 \\(it does in us-east-1, .*eu-west-1'));
    const app = new App();
    const chosen = new Stack(app, 'Knowledge', { env: { account: '111111111111', region: 'sa-east-1' } });
    new KnowledgeBase(chosen, 'Kb', {
      stage: PlatformStage.DEV, dataLake: new DataLake(chosen, 'Lake', { stage: PlatformStage.DEV }), generationModel: 'anthropic.claude-3-haiku-20240307-v1:0',
    });
    expect(Annotations.fromStack(chosen).findWarning('*', Match.stringLikeRegexp('generationModel'))).toEqual([]);
  });

  test('a stack without a region: the in-region model and a warning that names generationModel', () => {
    const { stack, modelArn } = modelIn(undefined);
    expect(modelArn).toContain('foundation-model/amazon.nova-lite-v1:0');
    Annotations.fromStack(stack).hasWarning('/Knowledge/Kb', Match.stringLikeRegexp('^generationModel: the stack\'s region is unknown at synth'));
  });
});

describe('sync', () => {
  const { stack, json } = kbStack({}, PlatformStage.DEV, true);
  const definition = definitionOf(stack, 'IngestionStateMachine');

  test('the ingestion definition passes asl-validator', () => {
    const result = aslValidator(definition);
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  test('SyncKnowledgeBase picks the data source by route, writes a request, counts it and starts the sync without waiting', () => {
    const choice = definition.States.SyncKnowledgeBase;
    expect(choice.Type).toBe('Choice');
    // The knowledgeBaseSync feature flag first (the router passes `false` when it is off), then the route.
    expect(choice.Choices).toEqual([
      {
        And: [{ Variable: '$.route.knowledgeBaseSync', IsPresent: true }, { Variable: '$.route.knowledgeBaseSync', BooleanEquals: false }],
        Next: 'SyncSkipped',
      },
      { Variable: '$.route.action', StringEquals: 'document', Next: 'DocumentsSource' },
    ]);
    expect(definition.States.SyncSkipped.Next).toBe('Done');
    expect(choice.Default).toBe('DataCardsSource');
    expect(definition.States.LoadTimeSeries.Next).toBe('SyncKnowledgeBase');
    expect(definition.States.CopyDocument.Next).toBe('SyncKnowledgeBase');
    expect(definition.States.DocumentsSource.Parameters.dataSourceId).not.toEqual(definition.States.DataCardsSource.Parameters.dataSourceId);
    const request = definition.States.RequestSync;
    expect(request.Resource).toBe('arn:aws:states:::aws-sdk:dynamodb:putItem');
    // Not a file's item: no status, dataset or content hash, so no index holds it.
    expect(Object.keys(request.Parameters.Item)).not.toEqual(expect.arrayContaining(['status']));
    expect(Object.keys(request.Parameters.Item).filter((k) => ['status', 'dataset', 'contentHash', 'updatedAt'].includes(k))).toEqual([]);
    expect(request.Parameters.Item.pk.S).toMatch(/^kbsync#/);
    expect(request.Next).toBe('CountSyncRequest');
    expect(definition.States.CountSyncRequest.Parameters.UpdateExpression).toMatch(/^ADD #r :one/);
    const start = definition.States.StartSync;
    expect(start.Resource).toBe('arn:aws:states:::states:startExecution');
    expect(start.Next).toBe('Done');
    // Nothing in the sync request path quarantines a file that is in the lake.
    for (const name of ['RequestSync', 'CountSyncRequest', 'StartSync']) {
      expect(definition.States[name].Catch.map((c: any) => c.Next)).not.toContain(expect.stringMatching(/Failed$/));
      expect(JSON.stringify(definition.States[name].Catch)).not.toContain('QuarantineFailure');
    }
    expect(definition.States.RecordIndexed).toBeUndefined();
  });

  test('the sync machine: a lease, rounds, one job at a time per knowledge base, GetIngestionJob polled, the outcome recorded', () => {
    const sync = definitionOf(stack, 'IngestionKnowledgeSyncStateMachine');
    const result = aslValidator(sync);
    expect(result.errorsText('\n')).toBe('');
    expect(sync.StartAt).toBe('Acquire');
    const each = sync.States.SyncEachSource;
    expect(each.MaxConcurrency).toBe(1);
    const inner = each.ItemProcessor.States;
    expect(inner.StartJob.Resource).toBe('arn:aws:states:::aws-sdk:bedrockagent:startIngestionJob');
    expect(inner.StartJob.Retry[0]).toMatchObject({ ErrorEquals: ['BedrockAgent.ConflictException'], BackoffRate: 1.5, JitterStrategy: 'FULL' });
    expect(inner.GetJob.Resource).toBe('arn:aws:states:::aws-sdk:bedrockagent:getIngestionJob');
    expect(inner.WaitForJob.Seconds).toBe(30);
    expect(inner['JobEnded?'].Choices[0].Or.map((c: any) => c.StringEquals)).toEqual(['COMPLETE', 'FAILED', 'STOPPED']);
    expect(each.Catch[0].Next).toBe('ReleaseAfterFailure');
    expect(sync.States.ReleaseAfterFailure.Next).toBe('SyncFailed');
    expect(sync.States.SyncFailed.Type).toBe('Fail');
    // The handler may delete only the sync's own items.
    const statements = rolePolicyStatements(json, 'IngestionKnowledgeSyncHandlerRole');
    const deletes = statements.filter((s) => [s.Action].flat().includes('dynamodb:DeleteItem'));
    expect(deletes).toHaveLength(1);
    expect(deletes[0].Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['kbsync#*'] } });
  });

  test('an hourly sweep starts the sync for requests left pending', () => {
    const rules = Object.values(json.Resources).filter((r: any) => r.Type === 'AWS::Events::Rule' && r.Properties.ScheduleExpression);
    expect(rules.map((r: any) => r.Properties.ScheduleExpression)).toContain('rate(1 hour)');
  });

  test('a sweep EventBridge cannot start goes to a dead-letter queue (lake key, TLS only, 14 days) that only this rule may use; monitoring alarms on it', () => {
    const own = new Stack(new App(), 'Knowledge', { env: ENV });
    const stage = PlatformStage.DEV;
    const dataLake = new DataLake(own, 'Lake', { stage });
    const knowledgeBase = new KnowledgeBase(own, 'Kb', { stage, dataLake });
    const pipeline = new IngestionPipeline(own, 'Ingestion', { stage, dataLake, knowledgeBase, largeFileProcessing: { enabled: false } });
    expect(pipeline.knowledgeBaseSync!.deadLetterQueue.encryptionMasterKey).toBe(dataLake.encryptionKey);
    new PlatformMonitoring(own, 'Monitoring', { stage, encryptionKey: dataLake.encryptionKey, watch: own });
    const t = Template.fromStack(own);
    const resources = t.toJSON().Resources as Record<string, any>;
    const [queueId, queue] = Object.entries(resources).find(([id, r]) => r.Type === 'AWS::SQS::Queue' && /KnowledgeSyncSweepDeadLetterQueue/.test(id))!;
    expect(queue.Properties).toMatchObject({ KmsMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^LakeKey/), 'Arn'] }, MessageRetentionPeriod: 14 * 24 * 3600 });
    const [ruleId, rule] = Object.entries(resources).find(([, r]) => r.Type === 'AWS::Events::Rule' && r.Properties.ScheduleExpression === 'rate(1 hour)')!;
    expect(rule.Properties.Targets).toEqual([expect.objectContaining({
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 1800 },
    })]);
    // The queue policy: TLS only, and EventBridge may send for this rule only.
    const queuePolicy = Object.values(resources).find((r) => r.Type === 'AWS::SQS::QueuePolicy' && r.Properties.Queues.some((q: any) => q.Ref === queueId))!;
    const statements = queuePolicy.Properties.PolicyDocument.Statement;
    expect(statements).toEqual(expect.arrayContaining([
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId, 'Arn'] } } },
      }),
    ]));
    // The key lets EventBridge encrypt dead letters for this rule only.
    const key = Object.values(resources).find((r) => r.Type === 'AWS::KMS::Key')!;
    expect(key.Properties.KeyPolicy.Statement).toContainEqual({
      Sid: 'AllowEventBridgeSyncSweepDeadLetters',
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: '*',
      Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:events:${ENV.region}:${ENV.account}:rule/${rule.Properties.Name}`]] } } },
    });
    expect(rule.Properties.Name).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Threshold: 0,
    });
  });

  test('the sync machine may start and read ingestion jobs of this knowledge base only', () => {
    const statements = rolePolicyStatements(json, 'IngestionKnowledgeSyncStateMachineRole');
    const jobs = statements.filter((s) => [s.Action].flat().some((a: string) => /IngestionJob$/.test(a)));
    expect(jobs.length).toBeGreaterThan(0);
    for (const s of jobs) expect(s.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Kb/), 'KnowledgeBaseArn'] });
    const ingestion = rolePolicyStatements(json, 'IngestionStateMachineRole');
    expect(ingestion.filter((s) => [s.Action].flat().includes('bedrock:StartIngestionJob'))).toEqual([]);
  });

  test('after each deployment: a rule on the stack status starts a sync of both sources (no Lambda)', () => {
    s3v.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        'source': ['aws.cloudformation'],
        'detail-type': ['CloudFormation Stack Status Change'],
        'resources': [{ Ref: 'AWS::StackId' }],
        'detail': { 'status-details': { status: ['CREATE_COMPLETE', 'UPDATE_COMPLETE'] } },
      },
    });
    const sync = definitionOf(s3v.stack, 'KbSyncStateMachine');
    expect(aslValidator(sync).isValid).toBe(true);
    const branches = sync.States.SyncBothSources.Branches;
    expect(branches.map((b: any) => b.StartAt)).toEqual(['SyncDocuments', 'SyncDataCards']);
    // The only function is the RAG query function: syncing needs none.
    expect(Object.values(s3v.json.Resources).filter((r: any) => r.Type === 'AWS::Lambda::Function').map((r: any) => r.Properties.Description))
      .toEqual([expect.stringMatching(/RAG/)]);
    expect(Object.values(kbStack({ syncAfterDeployment: false }).json.Resources).filter((r: any) => r.Type === 'AWS::StepFunctions::StateMachine')).toHaveLength(0);
  });

  test('scheduled sync: one Scheduler schedule per data source with the universal startIngestionJob target', () => {
    const { template } = kbStack({ scheduledSync: scheduler.ScheduleExpression.cron({ hour: '3', minute: '0' }) });
    const schedules = template.findResources('AWS::Scheduler::Schedule');
    expect(Object.keys(schedules)).toHaveLength(2);
    for (const schedule of Object.values(schedules)) {
      expect(schedule.Properties.ScheduleExpression).toBe('cron(0 3 * * ? *)');
      expect(JSON.stringify(schedule.Properties.Target.Arn)).toContain(':scheduler:::aws-sdk:bedrockagent:startIngestionJob');
      expect(JSON.stringify(schedule.Properties.Target.Input)).toContain('DataSourceId');
    }
  });
});

describe('replacing chunking or the embedding model after the first deploy', () => {
  // CloudFormation replaces a data source on a new ChunkingConfiguration, a knowledge base on a new embedding model or
  // storage, and a vector index on a new dimension or name, creating the new one before deleting the old: with a fixed
  // name the create fails ("already exists"). Each deploy below is the same stack synthesized again with one change.
  const deploy = (options: KnowledgeBaseOptions = {}) => {
    const { stack, json } = kbStack(options, PlatformStage.DEV, true);
    const names = (type: string) => Object.entries(json.Resources).filter(([, r]) => r.Type === type)
      .map(([id, r]) => [id, r.Properties.Name ?? r.Properties.IndexName] as [string, string]).sort();
    return {
      stack,
      json,
      knowledgeBase: names('AWS::Bedrock::KnowledgeBase'),
      dataSources: names('AWS::Bedrock::DataSource'),
      index: names('AWS::S3Vectors::Index'),
      deliverySource: names('AWS::Logs::DeliverySource'),
    };
  };
  const first = deploy();
  const chunked = deploy({ chunking: ChunkingStrategy.fixedSize({ maxTokens: 500, overlapPercentage: 10 }) });
  const remodelled = deploy({ embeddingModel: EmbeddingModel.titanTextV2({ dimensions: 512 }) });
  const ids = (pairs: Array<[string, string]>) => pairs.map(([id]) => id);
  const values = (pairs: Array<[string, string]>) => pairs.map(([, name]) => name);

  test('the default configuration keeps the names it always had, and the same input gives the same names', () => {
    expect(values(first.dataSources).sort()).toEqual(['data-cards', 'documents']);
    expect(values(first.index)).toEqual(['ons-knowledge']);
    expect(values(first.knowledgeBase)[0]).toMatch(/^ons-knowledge-dev-[0-9a-f]{8}$/);
    expect(deploy({ chunking: ChunkingStrategy.fixedSize({ maxTokens: 500, overlapPercentage: 10 }) }).dataSources).toEqual(chunked.dataSources);
  });

  test('new chunking: both data sources get new names under the same logical ids; the knowledge base and index stay', () => {
    expect(ids(chunked.dataSources)).toEqual(ids(first.dataSources));
    const renamed = values(chunked.dataSources);
    expect(renamed.filter((n) => values(first.dataSources).includes(n))).toEqual([]);
    expect(renamed.sort()).toEqual([expect.stringMatching(/^data-cards-[0-9a-f]{8}$/), expect.stringMatching(/^documents-[0-9a-f]{8}$/)]);
    expect(chunked.knowledgeBase).toEqual(first.knowledgeBase);
    expect(chunked.index).toEqual(first.index);
    expect(chunked.deliverySource).toEqual(first.deliverySource);
  });

  test('a new model or dimension: a new index, knowledge base and delivery source name under the same logical ids', () => {
    for (const key of ['index', 'knowledgeBase', 'deliverySource'] as const) {
      expect(ids(remodelled[key])).toEqual(ids(first[key]));
      expect(values(remodelled[key])[0]).not.toBe(values(first[key])[0]);
      expect(values(remodelled[key])[0]).toMatch(/-[0-9a-f]{8}$/);
    }
    // A new dimension with a new store: the OpenSearch index is renamed the same way, and the KB names its new index.
    const [, index] = onlyResource(aoss.json, 'AWS::OpenSearchServerless::Index');
    expect(index.Properties.IndexName).toMatch(/^ons-knowledge-[0-9a-f]{8}$/);
    const [, kb] = onlyResource(aoss.json, 'AWS::Bedrock::KnowledgeBase');
    expect(kb.Properties.StorageConfiguration.OpensearchServerlessConfiguration.VectorIndexName).toBe(index.Properties.IndexName);
  });

  test('everything that refers to them follows: query and sync by attribute, the role on every index of its bucket', () => {
    for (const d of [first, chunked, remodelled]) {
      const kbId = ids(d.knowledgeBase)[0];
      const query = Object.values(d.json.Resources).find((r: any) => r.Type === 'AWS::Lambda::Function' && /RAG/.test(r.Properties.Description)) as any;
      expect(query.Properties.Environment.Variables.ONS_KB_ID).toEqual({ 'Fn::GetAtt': [kbId, 'KnowledgeBaseId'] });
      const ingestion = definitionOf(d.stack, 'IngestionStateMachine');
      const dataSourceIds = d.dataSources.map(([id]) => id);
      // definitionOf names each attribute token by its resource's logical id, lower-cased.
      expect(JSON.stringify([ingestion.States.DocumentsSource.Parameters, ingestion.States.DataCardsSource.Parameters]))
        .toMatch(new RegExp(dataSourceIds.map((id) => `(?=.*${id.toLowerCase()})`).join('')));
      const sync = JSON.stringify(definitionOf(d.stack, 'KbSyncStateMachine'));
      expect(sync).not.toMatch(/"(documents|data-cards)(-[0-9a-f]{8})?"/);
      const vectors = rolePolicyStatements(d.json, 'KbRole').find((s) => [s.Action].flat().includes('s3vectors:PutVectors'));
      const [bucketId] = onlyResource(d.json, 'AWS::S3Vectors::VectorBucket');
      expect(vectors.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'VectorBucketArn'] }, '/index/ons-knowledge*']] });
      expect(values(d.index)[0]).toMatch(/^ons-knowledge/);
    }
  });

  test('the sync after deployment (on by default) re-indexes both new data sources on UPDATE_COMPLETE', () => {
    const sync = definitionOf(chunked.stack, 'KbSyncStateMachine');
    const started = sync.States.SyncBothSources.Branches.map((b: any) => JSON.stringify(b.States[b.StartAt].Parameters));
    for (const [id] of chunked.dataSources) expect(started.some((p: string) => p.includes(id.toLowerCase()))).toBe(true);
  });
});

describe('validation', () => {
  test('a dimension Titan V2 does not support names the prop', () => {
    expect(() => EmbeddingModel.titanTextV2({ dimensions: 768 })).toThrow(/embeddingModel\.dimensions.*1024, 512, 256.*768/);
  });
  test('custom models: id and dimension checked', () => {
    expect(EmbeddingModel.custom('cohere.embed-multilingual-v3', 1024).dimensions).toBe(1024);
    expect(() => EmbeddingModel.custom('not a model', 1024)).toThrow(/embeddingModel\.modelId/);
    expect(() => EmbeddingModel.custom('cohere.embed-multilingual-v3', 5000)).toThrow(/embeddingModel\.dimensions/);
  });
  test('chunking limits name the prop', () => {
    expect(() => ChunkingStrategy.fixedSize({ overlapPercentage: 0 })).toThrow(/chunking\.overlapPercentage/);
    expect(() => ChunkingStrategy.hierarchical({ maxParentTokens: 200, maxChildTokens: 300 })).toThrow(/chunking\.maxChildTokens/);
    expect(() => ChunkingStrategy.semantic({ breakpointPercentileThreshold: 10 })).toThrow(/chunking\.breakpointPercentileThreshold/);
  });
});

describe('cdk-nag', () => {
  test('a platform with OpenSearch Serverless and a scheduled sync has no unacknowledged AwsSolutions finding', () => {
    const app = new App({ context: { '@aws-cdk/core:validateAgainstDefaultRules': true } });
    const stack = new Stack(app, 'NagKnowledge', { env: { account: '123456789012', region: 'us-east-1' } });
    new OnsDataPlatform(stack, 'Platform', {
      stage: PlatformStage.PROD,
      knowledgeBase: { vectorStore: VectorStore.openSearchServerless(), scheduledSync: scheduler.ScheduleExpression.rate(Duration.days(1)) },
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
  });
});

describe('application logs: failed ingestion jobs and documents become metrics', () => {
  /** The two log events the Bedrock documentation shows (job level and document level), with a given outcome. */
  const jobEvent = (status: string) => ({
    event_timestamp: 1718683433639,
    event: {
      ingestion_job_id: 'JOB1234567',
      data_source_id: 'DS12345678',
      ingestion_job_status: status,
      knowledge_base_arn: 'arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB12345678',
      resource_statistics: { number_of_resources_failed: 1 },
    },
    event_version: '1.0',
    event_type: 'StartIngestionJob.StatusChanged',
    level: 'INFO',
  });
  const documentEvent = (status: string) => ({
    event_timestamp: 1718677342332,
    event: {
      ingestion_job_id: 'JOB1234567',
      data_source_id: 'DS12345678',
      knowledge_base_arn: 'arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB12345678',
      document_location: { type: 'S3', s3_location: { uri: 's3://bucket/knowledge/cards/x.md' } },
      status,
      status_reasons: ['reason'],
    },
    event_version: '1.0',
    event_type: 'StartIngestionJob.ResourceStatusChanged',
    level: status.endsWith('FAILED') ? 'ERROR' : 'INFO',
  });
  /** Reads a CloudWatch Logs JSON filter pattern made only of `$.a.b = "v"` terms joined by `&&`, and applies it. */
  function matches(pattern: string, event: unknown): boolean {
    const body = /^\{ (.*) \}$/.exec(pattern)![1];
    return body.split(' && ').every((term) => {
      const [, path, value] = /^\(?\$\.([\w.]+) = "([^"]*)"\)?$/.exec(term.trim())!;
      return path.split('.').reduce((v: any, k) => v?.[k], event) === value;
    });
  }

  test('delivery of the knowledge base\'s APPLICATION_LOGS to a KMS-encrypted vended log group', () => {
    const json = s3v.json;
    const [kbId] = onlyResource(json, 'AWS::Bedrock::KnowledgeBase');
    const [, source] = onlyResource(json, 'AWS::Logs::DeliverySource');
    expect(source.Properties).toMatchObject({ LogType: 'APPLICATION_LOGS', ResourceArn: { 'Fn::GetAtt': [kbId, 'KnowledgeBaseArn'] } });
    expect(source.Properties.Name).toMatch(/^ons-kb-dev-[0-9a-f]{8}$/);
    const [destId, destination] = onlyResource(json, 'AWS::Logs::DeliveryDestination');
    expect(destination.Properties.OutputFormat).toBe('json');
    const [, delivery] = onlyResource(json, 'AWS::Logs::Delivery');
    expect(delivery.Properties).toMatchObject({ DeliverySourceName: source.Properties.Name, DeliveryDestinationArn: { 'Fn::GetAtt': [destId, 'Arn'] } });
    const groups = Object.values(json.Resources).filter((r: any) => r.Type === 'AWS::Logs::LogGroup'
      && String(r.Properties.LogGroupName ?? '').startsWith('/aws/vendedlogs/bedrock/knowledge-base/APPLICATION_LOGS/')) as any[];
    expect(groups).toHaveLength(1);
    expect(groups[0].Properties.KmsKeyId).toBeDefined();
    // The destination is the log group itself (an ARN without the ':*' that logGroupArn carries).
    expect(JSON.stringify(destination.Properties.DestinationResourceArn)).toContain(`:log-group:${groups[0].Properties.LogGroupName}"`);
  });

  test('metric filters count failed jobs and failed documents of the documented events, and nothing else', () => {
    const filters = Object.values(s3v.json.Resources).filter((r: any) => r.Type === 'AWS::Logs::MetricFilter').map((r: any) => r.Properties);
    const byName = Object.fromEntries(filters.map((f: any) => [f.MetricTransformations[0].MetricName, f]));
    const jobs = byName[KnowledgeBaseLogMetrics.INGESTION_JOBS_FAILED];
    const docs = byName[KnowledgeBaseLogMetrics.DOCUMENTS_FAILED];
    for (const f of [jobs, docs]) {
      expect(f.MetricTransformations[0]).toMatchObject({
        MetricNamespace: metricsNamespace('dev'),
        MetricValue: '1',
        Unit: 'Count',
        Dimensions: [{ Key: KnowledgeBaseLogMetrics.DIMENSION, Value: '$.event.knowledge_base_arn' }],
      });
    }
    expect(matches(jobs.FilterPattern, jobEvent('FAILED'))).toBe(true);
    for (const status of ['INGESTION_JOB_STARTED', 'COMPLETE', 'STOPPED', 'CRAWLING_COMPLETED']) expect(matches(jobs.FilterPattern, jobEvent(status))).toBe(false);
    expect(matches(jobs.FilterPattern, documentEvent('FAILED'))).toBe(false);
    expect(matches(docs.FilterPattern, documentEvent('FAILED'))).toBe(true);
    // A failing document also logs EMBEDDING_FAILED or INDEXING_FAILED first: only its final FAILED counts.
    for (const status of ['EMBEDDING_FAILED', 'INDEXING_FAILED', 'INDEXED', 'RESOURCE_IGNORED']) expect(matches(docs.FilterPattern, documentEvent(status))).toBe(false);
    expect(matches(docs.FilterPattern, jobEvent('FAILED'))).toBe(false);
  });

  test('the metric methods watch what the filters publish; applicationLogs: false adds nothing', () => {
    const metric = s3v.knowledgeBase.metricIngestionJobsFailed();
    expect(metric.namespace).toBe(metricsNamespace('dev'));
    expect(metric.metricName).toBe(KnowledgeBaseLogMetrics.INGESTION_JOBS_FAILED);
    expect(Object.keys(metric.dimensions!)).toEqual([KnowledgeBaseLogMetrics.DIMENSION]);
    expect(s3v.knowledgeBase.metricDocumentsFailed().metricName).toBe(KnowledgeBaseLogMetrics.DOCUMENTS_FAILED);
    const off = kbStack({ applicationLogs: false });
    expect(off.knowledgeBase.applicationLogGroup).toBeUndefined();
    off.template.resourceCountIs('AWS::Logs::DeliverySource', 0);
    off.template.resourceCountIs('AWS::Logs::MetricFilter', 0);
  });
});
