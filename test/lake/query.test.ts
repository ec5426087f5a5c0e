import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { App, Fn, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
// @ts-expect-error TS1479: ESM-only package, transpiled by ts-jest.
import { parquetMetadata, type FileMetaData } from 'hyparquet';
import { DataLake, DataLakeProps, PlatformStage } from '../../src';
import { CATALOG, DatasetDefinition } from '../../src/ons/catalog';
import { convertFile } from '../../src/ons/convert';
import { localFile } from '../../src/ons/local-file';
import { ENV } from '../helpers';

/** CDK's bundled CloudFormation validator fails synth on a template error (property names, types, patterns, ranges). */
const VALIDATE = { '@aws-cdk/core:validateAgainstDefaultRules': true };

const GIB = 1024 ** 3;
const BUCKET = 'processed-bucket-name';

function lake(props: Partial<DataLakeProps> & { stage: PlatformStage }, context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...VALIDATE, ...context } });
  const stack = new Stack(app, 'Lake', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', props);
  return { app, stack, dataLake, template: Template.fromStack(stack) };
}

type Resource = { Type: string; Properties: any; DeletionPolicy?: string; UpdateReplacePolicy?: string };

function only(template: Template, type: string): Resource {
  const found = Object.values(template.findResources(type)) as Resource[];
  expect(found).toHaveLength(1);
  return found[0];
}

function commentsOf(table: Resource): Record<string, string> {
  return Object.fromEntries(table.Properties.TableInput.StorageDescriptor.Columns.map((c: any) => [c.Name, c.Comment]));
}

function tablesByName(template: Template, tableType = 'EXTERNAL_TABLE'): Record<string, Resource> {
  return Object.fromEntries((Object.values(template.findResources('AWS::Glue::Table')) as Resource[])
    .filter((t) => t.Properties.TableInput.TableType === tableType)
    .map((t) => [t.Properties.TableInput.Name, t]));
}

function processedBucketId(stack: Stack, dataLake: DataLake): string {
  return stack.resolve((dataLake.processedBucket.node.defaultChild as any).logicalId);
}

/** Evaluates the intrinsics the lake uses in strings, with the processed bucket given a name. */
function evaluate(value: any, refs: Record<string, string>): string {
  if (typeof value === 'string') return value;
  if (value.Ref !== undefined) {
    if (!(value.Ref in refs)) throw new Error(`no value for Ref ${value.Ref}`);
    return refs[value.Ref];
  }
  if (value['Fn::Join']) {
    const [separator, parts] = value['Fn::Join'];
    return parts.map((p: any) => evaluate(p, refs)).join(separator);
  }
  throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
}

/** What Athena does with a projected integer partition value and the table's parameters. */
function projectedValue(parameters: Record<string, string>, column: string, value: number): string {
  const [min, max] = parameters[`projection.${column}.range`].split(',').map(Number);
  expect(value).toBeGreaterThanOrEqual(min);
  expect(value).toBeLessThanOrEqual(max);
  return String(value).padStart(Number(parameters[`projection.${column}.digits`] ?? 0), '0');
}

/** Glue type of a Parquet column, from its physical and logical types. */
function glueType(element: { type?: string; logical_type?: { type: string; isAdjustedToUTC?: boolean; unit?: string } }): string {
  if (element.type === 'INT64' && element.logical_type?.type === 'TIMESTAMP') return 'timestamp';
  if (element.type === 'BYTE_ARRAY' && element.logical_type?.type === 'STRING') return 'string';
  if (element.type === 'DOUBLE') return 'double';
  if (element.type === 'INT32' && element.logical_type === undefined) return 'int';
  throw new Error(`no Glue type for ${JSON.stringify(element)}`);
}

/**
 * Runs the real conversion (detection, processing, the processed Parquet writer) on a one-row CSV
 * holding every column of a catalog dataset, and returns what it wrote.
 */
async function convertOneRow(def: DatasetDefinition, dir: string) {
  const header = [def.time, ...def.dimensions, ...def.labels, ...def.measures.map((m) => m.name)];
  const time = def.grain === 'P1D' || def.grain === 'P7D' ? '2024-03-15' : '2024-03-15 10:00:00';
  const row = [time, ...def.dimensions.map(() => 'SE'), ...def.labels.map(() => 'Sudeste'), ...def.measures.map(() => '1.5')];
  const file = join(dir, `${def.id}.csv`);
  writeFileSync(file, `${header.join(';')}\n${row.join(';')}\n`);
  const result = await convertFile(`${def.id}.csv`, localFile(file), { outDir: join(dir, 'out') });
  expect(result.parquet).toHaveLength(1);
  const [written] = result.parquet;
  const metadata: FileMetaData = parquetMetadata(readFileSync(written.path));
  return {
    relativePath: written.relativePath,
    year: Number(written.year),
    month: Number(written.month),
    columns: metadata.schema.slice(1).map((e: any) => ({ name: e.name, type: glueType(e) })),
  };
}

describe('DataLake Glue database and tables', () => {
  const { template, stack, dataLake } = lake({ stage: PlatformStage.PROD });
  const tables = tablesByName(template);
  const refs = { [processedBucketId(stack, dataLake)]: BUCKET };
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lake-tables-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('creates one database, named after the stage, in this account', () => {
    const db = only(template, 'AWS::Glue::Database');
    expect(db.Properties).toEqual({ CatalogId: ENV.account, DatabaseInput: { Name: 'ons_data_platform_prod', Description: expect.any(String) } });
    expect(dataLake.databaseName).toBe('ons_data_platform_prod');
    expect(stack.resolve(dataLake.databaseArn)).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':glue:sa-east-1:123456789012:database/ons_data_platform_prod']],
    });
  });

  test('creates exactly one table per catalog dataset, in the database', () => {
    expect(Object.keys(tables).sort()).toEqual(CATALOG.map((d) => d.id).sort());
    expect(dataLake.datasetIds).toEqual(CATALOG.map((d) => d.id));
    const dbId = Object.keys(template.findResources('AWS::Glue::Database'))[0];
    for (const t of Object.values(tables)) {
      expect(t.Properties.CatalogId).toBe(ENV.account);
      expect(t.Properties.DatabaseName).toEqual({ Ref: dbId });
    }
  });

  test.each(CATALOG.map((d) => [d.id, d] as const))('%s: external Parquet table whose columns are the ones the processor writes, with the same types', async (_id, def) => {
    const written = await convertOneRow(def, dir);
    const input = tables[def.id].Properties.TableInput;
    expect(input.TableType).toBe('EXTERNAL_TABLE');
    expect(input.Parameters).toMatchObject({ EXTERNAL: 'TRUE', classification: 'parquet' });
    const sd = input.StorageDescriptor;
    expect(sd.InputFormat).toBe('org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat');
    expect(sd.OutputFormat).toBe('org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat');
    expect(sd.SerdeInfo).toEqual({ SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' });
    expect(sd.Columns.map((c: any) => ({ name: c.Name, type: c.Type }))).toEqual(written.columns);
    expect(input.PartitionKeys.map((k: any) => ({ name: k.Name, type: k.Type }))).toEqual([{ name: 'year', type: 'int' }, { name: 'month', type: 'int' }]);
  });

  test.each(CATALOG.map((d) => [d.id, d] as const))('%s: the projected location of a partition is where the processor wrote it', async (_id, def) => {
    const written = await convertOneRow(def, dir);
    const parameters = tables[def.id].Properties.TableInput.Parameters;
    const location = evaluate(parameters['storage.location.template'], refs)
      .replace('${year}', projectedValue(parameters, 'year', written.year))
      .replace('${month}', projectedValue(parameters, 'month', written.month));
    expect(location).toBe(`s3://${BUCKET}/${posix.dirname(written.relativePath)}/`);
    const tableLocation = evaluate(tables[def.id].Properties.TableInput.StorageDescriptor.Location, refs);
    expect(location.startsWith(tableLocation)).toBe(true);
    expect(tableLocation).toBe(`s3://${BUCKET}/processed/dataset=${def.id}/`);
  });

  test('partition projection: year 2000-2050, month 1-12 with two digits, no Glue partitions needed', () => {
    for (const t of Object.values(tables)) {
      const p = t.Properties.TableInput.Parameters;
      expect(Object.fromEntries(Object.entries(p).filter(([k]) => k.startsWith('projection.')))).toEqual({
        'projection.enabled': 'true',
        'projection.year.type': 'integer',
        'projection.year.range': '2000,2050',
        'projection.month.type': 'integer',
        'projection.month.range': '1,12',
        'projection.month.digits': '2',
      });
    }
    template.resourceCountIs('AWS::Glue::Partition', 0);
  });

  test('table and column comments come from the catalog, measures with their units', () => {
    for (const def of CATALOG) {
      const input = tables[def.id].Properties.TableInput;
      expect(input.Description).toContain(def.title.en);
      expect(input.Description).toContain(def.description.en.slice(0, 40));
      const comments = Object.fromEntries(input.StorageDescriptor.Columns.map((c: any) => [c.Name, c.Comment]));
      for (const m of def.measures) {
        expect(comments[m.name]).toContain(m.description.en);
        expect(comments[m.name]).toContain(`[${m.unit ?? 'unit not stated by ONS'}]`);
      }
      expect(comments.time).toContain('UTC');
      expect(comments.local_time).toContain(def.time);
      for (const c of input.StorageDescriptor.Columns) expect(c.Comment.length).toBeLessThanOrEqual(255);
      expect(input.Description.length).toBeLessThanOrEqual(2048);
    }
    const comments = commentsOf(tables.ear_diario_subsistema);
    expect(comments.ear_verif_subsistema_percentual).toBe('Verified stored energy, % of maximum / Energia armazenada verificada, % da máxima [%].');
    const interchange = commentsOf(tables.intercambio_nacional);
    expect(interchange.val_intercambioprogmwmed).toContain('Absent from some publications');
  });

  test('tableName and tableArn name a dataset\'s table; an unknown dataset is refused', () => {
    const id = Object.keys(template.findResources('AWS::Glue::Table', { Properties: { TableInput: { Name: 'cmo_semihorario' } } }))[0];
    expect(stack.resolve(dataLake.tableName('cmo_semihorario'))).toEqual({ Ref: id });
    expect(stack.resolve(dataLake.tableArn('cmo_semihorario'))).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':glue:sa-east-1:123456789012:table/ons_data_platform_prod/cmo_semihorario']],
    });
    expect(() => dataLake.tableName('nope')).toThrow("DataLake has no table for dataset 'nope'");
    expect(() => dataLake.tableArn('nope')).toThrow("DataLake has no table for dataset 'nope'");
  });
});

describe('DataLake tables: props', () => {
  test.each([
    [PlatformStage.DEV, 'ons_data_platform_dev'],
    [PlatformStage.STAGING, 'ons_data_platform_staging'],
    [PlatformStage.PROD.derive({ name: 'prod-eu' }), 'ons_data_platform_prod_eu'],
  ])('the default database name follows the stage (%#)', (stage, name) => {
    expect(lake({ stage }).dataLake.databaseName).toBe(name);
  });

  test('databaseName and projectionEndYear props', () => {
    const { template, dataLake } = lake({ stage: PlatformStage.DEV, databaseName: 'energy', projectionEndYear: 2035, processedDataPrefix: 'parquet/' });
    expect(only(template, 'AWS::Glue::Database').Properties.DatabaseInput.Name).toBe('energy');
    expect(dataLake.databaseName).toBe('energy');
    for (const t of Object.values(tablesByName(template))) {
      expect(t.Properties.TableInput.Parameters['projection.year.range']).toBe('2000,2035');
      expect(JSON.stringify(t.Properties.TableInput.Parameters['storage.location.template'])).toContain('/parquet/dataset=');
    }
  });

  test('a databaseName that is a token is taken as is', () => {
    const { template } = lake({ stage: PlatformStage.DEV, databaseName: Fn.importValue('LakeDatabaseName') });
    expect(only(template, 'AWS::Glue::Database').Properties.DatabaseInput.Name).toEqual({ 'Fn::ImportValue': 'LakeDatabaseName' });
  });

  test('additionalDatasets get a table with the processor\'s added columns around their own', () => {
    const { template, dataLake } = lake({
      stage: PlatformStage.DEV,
      additionalDatasets: [{
        datasetId: 'restricao_eolica',
        dimensions: ['id_subsistema', 'id_ons'],
        labels: ['nom_usina'],
        measures: [{ name: 'val_geracao', unit: 'MWmed', description: 'Verified generation' }, { name: 'val_disponibilidade' }],
      }],
    });
    const input = tablesByName(template).restricao_eolica.Properties.TableInput;
    expect(input.StorageDescriptor.Columns.map((c: any) => [c.Name, c.Type])).toEqual([
      ['time', 'timestamp'], ['local_time', 'string'],
      ['id_subsistema', 'string'], ['id_ons', 'string'], ['nom_usina', 'string'],
      ['val_geracao', 'double'], ['val_disponibilidade', 'double'],
      ['source_key', 'string'], ['source_version', 'string'], ['source_time', 'timestamp'], ['source_row', 'int'],
    ]);
    expect(input.StorageDescriptor.Columns[5].Comment).toBe('Verified generation [MWmed].');
    expect(input.StorageDescriptor.Columns[6].Comment).toBe('val_disponibilidade [unit not stated].');
    expect(input.Parameters['projection.enabled']).toBe('true');
    expect(dataLake.datasetIds).toEqual([...CATALOG.map((d) => d.id), 'restricao_eolica']);
  });

  const make = (props: Partial<DataLakeProps>) => () => lake({ stage: PlatformStage.PROD, ...props });
  test.each([
    [{ databaseName: 'Ons-Lake' }, /DataLakeProps.databaseName: expected lower-case letters, digits and underscores, starting with a letter, at most 255 characters, got 'Ons-Lake'/],
    [{ databaseName: '_lake' }, /DataLakeProps.databaseName/],
    [{ databaseName: 'a'.repeat(256) }, /DataLakeProps.databaseName/],
    [{ projectionEndYear: 1999 }, /DataLakeProps.projectionEndYear: expected a year from 2000 to 9999, got 1999/],
    [{ projectionEndYear: 2040.5 }, /DataLakeProps.projectionEndYear/],
    [{ additionalDatasets: [{ datasetId: 'carga_energia', measures: [{ name: 'val_x' }] }] }, /DataLakeProps.additionalDatasets: dataset 'carga_energia' already has a table \(it is in the catalog\)/],
    [{ additionalDatasets: [{ datasetId: 'x_y', measures: [{ name: 'val_x' }] }, { datasetId: 'x_y', measures: [{ name: 'val_x' }] }] }, /dataset 'x_y' already has a table \(listed twice\)/],
    [{ additionalDatasets: [{ datasetId: 'X-Y', measures: [{ name: 'val_x' }] }] }, /DataLakeProps.additionalDatasets\[0\].datasetId: expected lower-case letters/],
    [{ additionalDatasets: [{ datasetId: 'x', measures: [] }] }, /DataLakeProps.additionalDatasets\[0\].measures: a dataset needs at least one measure/],
    [{ additionalDatasets: [{ datasetId: 'x', labels: ['source_key'], measures: [{ name: 'val_x' }] }] }, /DataLakeProps.additionalDatasets\[0\]: column 'source_key' is listed twice or is one the processor adds or partitions by/],
    [{ additionalDatasets: [{ datasetId: 'x', dimensions: ['month'], measures: [{ name: 'val_x' }] }] }, /column 'month'/],
    [{ additionalDatasets: [{ datasetId: 'x', dimensions: ['id_a'], labels: ['id_a'], measures: [{ name: 'val_x' }] }] }, /column 'id_a' is listed twice/],
    [{ additionalDatasets: [{ datasetId: 'x', measures: [{ name: 'Val X' }] }] }, /DataLakeProps.additionalDatasets\[0\] column: expected lower-case letters/],
  ])('%j is refused', (props, message) => {
    expect(make(props as Partial<DataLakeProps>)).toThrow(message);
  });
});

describe('DataLake Athena workgroup', () => {
  const { template, stack, dataLake } = lake({ stage: PlatformStage.PROD });
  const keyId = Object.keys(template.findResources('AWS::KMS::Key'))[0];
  const bucketId = processedBucketId(stack, dataLake);

  test('enforces encrypted results under athena-results/ of the processed bucket, metrics, the cutoff and engine 3', () => {
    const wg = only(template, 'AWS::Athena::WorkGroup');
    expect(wg.Properties).toEqual(expect.objectContaining({
      Name: 'ons-data-platform-prod',
      State: 'ENABLED',
      RecursiveDeleteOption: false,
      WorkGroupConfiguration: {
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: 100 * GIB,
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        ResultConfiguration: {
          OutputLocation: { 'Fn::Join': ['', ['s3://', { Ref: bucketId }, '/athena-results/']] },
          ExpectedBucketOwner: ENV.account,
          EncryptionConfiguration: { EncryptionOption: 'SSE_KMS', KmsKey: { 'Fn::GetAtt': [keyId, 'Arn'] } },
        },
      },
    }));
    expect(dataLake.workGroupName).toBe('ons-data-platform-prod');
    expect(dataLake.queryResultsPrefix).toBe('athena-results/');
    expect(stack.resolve(dataLake.workGroupArn)).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':athena:sa-east-1:123456789012:workgroup/ons-data-platform-prod']],
    });
  });

  test.each([
    [PlatformStage.DEV, 10 * GIB],
    [PlatformStage.STAGING, 100 * GIB],
    [PlatformStage.PROD, 100 * GIB],
  ])('the default cutoff per query follows the stage (%#)', (stage, bytes) => {
    const t = lake({ stage });
    expect(only(t.template, 'AWS::Athena::WorkGroup').Properties.WorkGroupConfiguration.BytesScannedCutoffPerQuery).toBe(bytes);
    expect(t.dataLake.bytesScannedCutoffPerQuery).toBe(bytes);
  });

  test('props set the cutoff (down to the Athena minimum), name, results prefix and their expiry', () => {
    const t = lake({
      stage: PlatformStage.DEV, bytesScannedCutoffPerQuery: 10_000_000, workGroupName: 'analysts.v2', queryResultsPrefix: 'query-results/', queryResultsExpirationDays: 3,
    });
    const wg = only(t.template, 'AWS::Athena::WorkGroup').Properties;
    expect(wg.Name).toBe('analysts.v2');
    expect(wg.WorkGroupConfiguration.BytesScannedCutoffPerQuery).toBe(10_000_000);
    expect(JSON.stringify(wg.WorkGroupConfiguration.ResultConfiguration.OutputLocation)).toContain('/query-results/');
    const processed = t.template.findResources('AWS::S3::Bucket')[processedBucketId(t.stack, t.dataLake)];
    expect(processed.Properties.LifecycleConfiguration.Rules).toContainEqual({ Id: 'expire-query-results', Prefix: 'query-results/', ExpirationInDays: 3, Status: 'Enabled' });
  });

  const make = (props: Partial<DataLakeProps>) => () => lake({ stage: PlatformStage.PROD, ...props });
  test.each([
    [{ bytesScannedCutoffPerQuery: 9_999_999 }, /DataLakeProps.bytesScannedCutoffPerQuery: expected a whole number of bytes of at least 10000000 \(10 MB, the Athena minimum\), got 9999999/],
    [{ bytesScannedCutoffPerQuery: 0 }, /DataLakeProps.bytesScannedCutoffPerQuery/],
    [{ bytesScannedCutoffPerQuery: 1.5e7 + 0.5 }, /DataLakeProps.bytesScannedCutoffPerQuery/],
    [{ workGroupName: 'my workgroup' }, /DataLakeProps.workGroupName: expected 1-128 letters, digits, '.', '_' or '-', got 'my workgroup'/],
    [{ workGroupName: 'w'.repeat(129) }, /DataLakeProps.workGroupName/],
    [{ queryResultsPrefix: 'results' }, /DataLakeProps.queryResultsPrefix: expected path segments/],
    [{ queryResultsPrefix: 'processed/athena/' }, /DataLakeProps.queryResultsPrefix \('processed\/athena\/'\) must not be inside processedDataPrefix/],
    [{ queryResultsPrefix: 'knowledge/' }, /DataLakeProps.documentsPrefix \('knowledge\/documents\/'\) must not be inside queryResultsPrefix/],
    [{ queryResultsExpirationDays: 0 }, /DataLakeProps.queryResultsExpirationDays: expected a whole number of days of at least 1, got 0/],
  ])('%j is refused', (props, message) => {
    expect(make(props as Partial<DataLakeProps>)).toThrow(message);
  });
});

describe('DataLake grantQuery', () => {
  const app = new App({ context: VALIDATE });
  const stack = new Stack(app, 'Lake', { env: ENV });
  const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
  const role = new iam.Role(stack, 'Analyst', { assumedBy: new iam.AccountRootPrincipal() });
  const grant = dataLake.grantQuery(role);
  const template = Template.fromStack(stack);
  const roleId = stack.resolve((role.node.defaultChild as iam.CfnRole).logicalId);
  const [policy] = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]).filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId));
  const statements: any[] = policy.Properties.PolicyDocument.Statement;
  const bucketId = processedBucketId(stack, dataLake);
  const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
  const objects = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${prefix}*`]] });
  const keyArn = { 'Fn::GetAtt': [Object.keys(template.findResources('AWS::KMS::Key'))[0], 'Arn'] };
  const arn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:${rest}`]] });

  test('grants exactly the statements a query needs', () => {
    expect(grant.success).toBe(true);
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution', 'athena:GetWorkGroup'],
        Resource: arn('athena:sa-east-1:123456789012:workgroup/ons-data-platform-prod'),
      },
      {
        Effect: 'Allow',
        Action: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartitions'],
        Resource: [
          arn('glue:sa-east-1:123456789012:catalog'),
          arn('glue:sa-east-1:123456789012:database/ons_data_platform_prod'),
          ...CATALOG.flatMap((d) => [d.id, `${d.id}_current`].map((t) => arn(`glue:sa-east-1:123456789012:table/ons_data_platform_prod/${t}`))),
        ],
      },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['processed/*', 'athena-results/*'] } },
      },
      { Effect: 'Allow', Action: 's3:GetBucketLocation', Resource: bucketArn },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: objects('processed/') },
      {
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: objects('athena-results/'),
      },
      {
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: keyArn,
        Condition: { StringEquals: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' } },
      },
    ]);
  });

  test('no wildcard action, and no wildcard resource outside the two prefixes', () => {
    for (const s of statements) {
      for (const action of [s.Action].flat()) expect(action).not.toMatch(/\*/);
      for (const resource of [s.Resource].flat()) {
        const text = JSON.stringify(resource);
        if (text.includes('*')) expect([objects('processed/'), objects('athena-results/')]).toContainEqual(resource);
      }
    }
  });

  test('with an encrypted Data Catalog, the key may also be used through Glue', () => {
    const s = new Stack(new App({ context: VALIDATE }), 'Encrypted', { env: ENV });
    new DataLake(s, 'Lake', { stage: PlatformStage.DEV, encryptDataCatalog: true })
      .grantQuery(new iam.Role(s, 'Analyst', { assumedBy: new iam.AccountRootPrincipal() }));
    const policies = Template.fromStack(s).findResources('AWS::IAM::Policy');
    const kms = (Object.values(policies) as Resource[]).flatMap((p) => p.Properties.PolicyDocument.Statement).find((x: any) => x.Action.includes?.('kms:Decrypt'));
    expect(kms.Condition).toEqual({ StringEquals: { 'kms:ViaService': ['s3.sa-east-1.amazonaws.com', 'glue.sa-east-1.amazonaws.com'] } });
  });

  test('cdk-nag: the grantee has exactly the two object-prefix findings acknowledged, with a reason', () => {
    const metadata = role.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
    const ids = metadata.flatMap((m) => Object.keys(m.data as object)).map((k) => k.replace(/^annotation::/i, ''));
    expect(ids.sort()).toEqual([
      `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/athena-results/*]`,
      `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/processed/*]`,
    ]);
  });
});

describe('DataLake Glue Data Catalog encryption', () => {
  test('is left alone by default', () => {
    lake({ stage: PlatformStage.PROD }).template.resourceCountIs('AWS::Glue::DataCatalogEncryptionSettings', 0);
  });

  test('encryptDataCatalog encrypts the catalog and connection passwords with the lake key, and retains the settings', () => {
    const { template } = lake({ stage: PlatformStage.PROD, encryptDataCatalog: true });
    const keyArn = { 'Fn::GetAtt': [Object.keys(template.findResources('AWS::KMS::Key'))[0], 'Arn'] };
    const settings = only(template, 'AWS::Glue::DataCatalogEncryptionSettings');
    expect(settings.Properties).toEqual({
      CatalogId: ENV.account,
      DataCatalogEncryptionSettings: {
        EncryptionAtRest: { CatalogEncryptionMode: 'SSE-KMS', SseAwsKmsKeyId: keyArn },
        ConnectionPasswordEncryption: { ReturnConnectionPasswordEncrypted: true, KmsKeyId: keyArn },
      },
    });
    expect([settings.DeletionPolicy, settings.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
  });

  test('with encryptDataCatalog, the key is retained even when data removal is allowed, with a warning', () => {
    const removeData = { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true };
    const { template, stack } = lake({ stage: PlatformStage.DEV, encryptDataCatalog: true }, removeData);
    const key = only(template, 'AWS::KMS::Key');
    expect([key.DeletionPolicy, key.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    for (const b of Object.values(template.findResources('AWS::S3::Bucket')) as Resource[]) expect(b.DeletionPolicy).toBe('Delete');
    Annotations.fromStack(stack).hasWarning('/Lake/Lake', Match.stringLikeRegexp('encryptDataCatalog encrypts the account\'s Glue Data Catalog'));
  });
});

describe('DataLake catalog and workgroup removal policy', () => {
  test.each([PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD])('without the flag, %# retains the database and the workgroup (with its queries); tables are deleted', (stage) => {
    const { template } = lake({ stage });
    const db = only(template, 'AWS::Glue::Database');
    const wg = only(template, 'AWS::Athena::WorkGroup');
    expect([db.DeletionPolicy, db.UpdateReplacePolicy, wg.DeletionPolicy, wg.UpdateReplacePolicy]).toEqual(['Retain', 'Retain', 'Retain', 'Retain']);
    expect(wg.Properties.RecursiveDeleteOption).toBe(false);
    for (const t of Object.values(tablesByName(template))) expect(t.DeletionPolicy).toBeUndefined();
  });

  test('with the flag in DEV, deletes the database and the workgroup, saved queries included', () => {
    const { template } = lake({ stage: PlatformStage.DEV }, { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true });
    const db = only(template, 'AWS::Glue::Database');
    const wg = only(template, 'AWS::Athena::WorkGroup');
    expect([db.DeletionPolicy, wg.DeletionPolicy]).toEqual(['Delete', 'Delete']);
    expect(wg.Properties.RecursiveDeleteOption).toBe(true);
  });

  test('with the flag in PROD, retains them', () => {
    const { template } = lake({ stage: PlatformStage.PROD }, { [PlatformStage.REMOVE_DATA_ON_DESTROY_CONTEXT]: true });
    expect(only(template, 'AWS::Glue::Database').DeletionPolicy).toBe('Retain');
    const wg = only(template, 'AWS::Athena::WorkGroup');
    expect([wg.DeletionPolicy, wg.Properties.RecursiveDeleteOption]).toEqual(['Retain', false]);
  });
});

describe('DataLake query: cdk-nag AwsSolutions', () => {
  test.each([PlatformStage.DEV, PlatformStage.PROD])('a lake with a query grantee and catalog encryption has no unacknowledged finding (%#)', (stage) => {
    const app = new App({ context: VALIDATE });
    const stack = new Stack(app, 'Nag', { env: ENV });
    const dataLake = new DataLake(stack, 'Lake', { stage, encryptDataCatalog: true });
    dataLake.grantQuery(new iam.Role(stack, 'Analyst', { assumedBy: new iam.AccountRootPrincipal() }));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
  });

  test('the check is live: a wildcard the lake did not create is still reported', () => {
    const app = new App({ context: VALIDATE });
    const stack = new Stack(app, 'Nag', { env: ENV });
    const dataLake = new DataLake(stack, 'Lake', { stage: PlatformStage.PROD });
    const role = new iam.Role(stack, 'Analyst', { assumedBy: new iam.AccountRootPrincipal() });
    dataLake.grantQuery(role);
    role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [dataLake.processedBucket.arnForObjects('knowledge/*')] }));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Resource::<LakeProcessedBucket[0-9A-F]+\.Arn>\/knowledge\/\*\]/);
  });
});

describe('documented defaults (query)', () => {
  test('match the TSDoc @default values', () => {
    const { dataLake, template } = lake({ stage: PlatformStage.STAGING });
    expect([dataLake.queryResultsPrefix, dataLake.databaseName, dataLake.workGroupName, dataLake.bytesScannedCutoffPerQuery])
      .toEqual(['athena-results/', 'ons_data_platform_staging', 'ons-data-platform-staging', 100 * GIB]);
    expect(dataLake.replicationRole).toBeUndefined();
    template.resourceCountIs('AWS::Glue::DataCatalogEncryptionSettings', 0);
    for (const t of Object.values(tablesByName(template))) expect(t.Properties.TableInput.Parameters['projection.year.range']).toBe('2000,2050');
    const processed = template.findResources('AWS::S3::Bucket')[processedBucketId(lake({ stage: PlatformStage.STAGING }).stack, dataLake)];
    expect(processed.Properties.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ Id: 'expire-query-results', ExpirationInDays: 30 }));
    expect(processed.Properties.ReplicationConfiguration).toBeUndefined();
  });
});
