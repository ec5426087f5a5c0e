/**
 * Permission inventories: the AWS calls each principal of the platform makes, declared next to the code that makes
 * them, so test/permissions/closure.test.ts can prove every call is allowed by the synthesized policies and every
 * granted action is used. Kept out of src/index.ts: test-only, not part of the jsii API.
 * @module
 */
import { Fn, Stack } from 'aws-cdk-lib';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';

/**
 * One AWS call. Values may be CDK tokens (a bucket ARN, a table ARN): the test resolves them in the synthesized stack.
 * @internal
 */
export interface AwsCall {
  /** `service:Action` as IAM names it (e.g. `s3:GetObject`). */
  readonly action: string;
  /** The ARN the call acts on (an object ARN with its key prefix, a table ARN, `*` for actions without resources). */
  readonly resource: string;
  /**
   * The KMS key ARN of the data the call reads or writes: the service then calls KMS for the caller (see `kmsCallsOf`).
   * @default - the data is not encrypted with a customer-managed key
   */
  readonly kmsKey?: string;
  /**
   * Context keys AWS sets on the request (e.g. `aws:SourceArn` for a service principal).
   * @default - none
   */
  readonly context?: Record<string, string | string[]>;
}

/**
 * The calls one principal makes: a role (function, state machine, Batch job, EventBridge target) or a service
 * principal acting on a resource policy (e.g. `events.amazonaws.com` publishing to a topic).
 * @internal
 */
export interface CallerInventory {
  /** Who calls, in words (the test prints it). */
  readonly name: string;
  /** The role, or the service principal's name. */
  readonly principal: IRole | string;
  readonly calls: AwsCall[];
}

/** The KMS calls a service makes on the caller's behalf, with the context it sends (one table, per the AWS docs). */
interface KmsUse {
  readonly actions: string[];
  /** Encryption context key and value (from the call's resource). */
  readonly encryptionContext: (resource: string) => Record<string, string>;
}

/**
 * S3 with SSE-KMS and a bucket key (the lake's buckets): GetObject needs kms:Decrypt, PutObject kms:GenerateDataKey,
 * and multipart uploads kms:Decrypt too; the context is the bucket ARN (aws:s3:arn) with bucket keys.
 * SNS and SQS publishers need kms:GenerateDataKey and kms:Decrypt (context aws:sns:topicArn / aws:sqs:arn).
 * DynamoDB calls kms:Decrypt for the caller to open the table key (context aws:dynamodb:tableName).
 */
const s3Bucket = (resource: string) => ({ 'aws:s3:arn': resource.split('/')[0] });
const KMS_USES: Array<[RegExp, KmsUse]> = [
  [/^s3:(GetObject|GetObjectVersion|RestoreObject)$/, { actions: ['kms:Decrypt'], encryptionContext: s3Bucket }],
  [/^s3:PutObject$/, { actions: ['kms:GenerateDataKey', 'kms:Decrypt'], encryptionContext: s3Bucket }],
  [/^sns:Publish$/, { actions: ['kms:GenerateDataKey', 'kms:Decrypt'], encryptionContext: (r) => ({ 'aws:sns:topicArn': r }) }],
  [/^sqs:SendMessage$/, { actions: ['kms:GenerateDataKey', 'kms:Decrypt'], encryptionContext: (r) => ({ 'aws:sqs:arn': r }) }],
  // Secrets Manager decrypts a secret version for GetSecretValue and asks for a data key to store a new one; the
  // encryption context is the secret's ARN (SecretARN) and version id.
  [/^secretsmanager:GetSecretValue$/, { actions: ['kms:Decrypt'], encryptionContext: (r) => ({ SecretARN: r }) }],
  [/^secretsmanager:PutSecretValue$/, { actions: ['kms:GenerateDataKey', 'kms:Decrypt'], encryptionContext: (r) => ({ SecretARN: r }) }],
  // AppConfig decrypts a hosted configuration for the caller; it documents no encryption context to scope on.
  [/^appconfig:GetLatestConfiguration$/, { actions: ['kms:Decrypt'], encryptionContext: () => ({}) }],
  [/^dynamodb:(GetItem|PutItem|UpdateItem|Query|BatchGetItem|BatchWriteItem|Scan|ConditionCheckItem|DeleteItem)$/, {
    actions: ['kms:Decrypt'],
    encryptionContext: (r) => ({ 'aws:dynamodb:tableName': r.split(':table/')[1]?.split('/')[0] ?? r }),
  }],
];

/**
 * The KMS calls a call makes through its service: kms:ViaService is the service's regional endpoint.
 * @internal
 */
export function kmsCallsOf(call: AwsCall, region: string): AwsCall[] {
  if (!call.kmsKey) return [];
  const use = KMS_USES.find(([pattern]) => pattern.test(call.action))?.[1];
  if (!use) throw new Error(`${call.action}: declares kmsKey but no KMS use is known for it (src/core/permissions.ts KMS_USES)`);
  const service = call.action.split(':')[0];
  const context: Record<string, string | string[]> = { ...call.context, 'kms:ViaService': `${service}.${region}.amazonaws.com` };
  for (const [k, v] of Object.entries(use.encryptionContext(call.resource))) context[`kms:EncryptionContext:${k}`] = v;
  return use.actions.map((action) => ({ action, resource: call.kmsKey!, context }));
}

/**
 * What every platform function does by running: decrypts its environment, writes its own log group, and traces when
 * the stage traces.
 * @internal
 */
export function functionRuntimeCalls(fn: lambda.Function): AwsCall[] {
  const cfn = fn.node.defaultChild as lambda.CfnFunction;
  const tracing = (cfn.tracingConfig as lambda.CfnFunction.TracingConfigProperty | undefined)?.mode === 'Active';
  const { region, account } = Stack.of(fn);
  return [
    // The environment, encrypted with a customer-managed key: decrypted at start for the function, with the
    // function's ARN as encryption context (the platform's functions all set KmsKeyArn).
    ...(cfn.kmsKeyArn ? [{
      action: 'kms:Decrypt',
      resource: cfn.kmsKeyArn,
      context: { 'kms:EncryptionContext:aws:lambda:FunctionArn': `arn:aws:lambda:${region}:${account}:function:${fn.functionName}` },
    }] : []),
    { action: 'logs:CreateLogStream', resource: fn.logGroup.logGroupArn },
    { action: 'logs:PutLogEvents', resource: fn.logGroup.logGroupArn },
    ...(tracing ? ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'].map((action) => ({ action, resource: '*' })) : []),
  ];
}

type Tracing = sfn.CfnStateMachine.TracingConfigurationProperty | undefined;
/** @internal Whether a state machine traces (X-Ray). */
export const machineTracing = (m: sfn.StateMachine) => ((m.node.defaultChild as sfn.CfnStateMachine).tracingConfiguration as Tracing)?.enabled;

/** @internal A state machine's name, from its ARN (`arn:aws:states:<region>:<account>:stateMachine:<name>`). */
export const machineName = (arn: string) => Fn.select(6, Fn.split(':', arn));

/** @internal Starting an execution of a KMS-encrypted state machine: Step Functions encrypts its input with the key. */
export function startEncrypted(machine: sfn.StateMachine, key: kms.IKey): AwsCall[] {
  return [
    { action: 'states:StartExecution', resource: machine.stateMachineArn },
    ...['kms:GenerateDataKey', 'kms:Decrypt'].map((action) => ({
      action, resource: key.keyArn, context: { 'kms:EncryptionContext:aws:states:stateMachineArn': machine.stateMachineArn },
    })),
  ];
}

/** @internal A state machine's own calls: its encrypted execution data, its log delivery, its traces. */
export function machineRuntimeCalls(m: sfn.StateMachine, key: kms.IKey): AwsCall[] {
  const { region, account } = Stack.of(m);
  return [
    ...['kms:Decrypt', 'kms:GenerateDataKey'].map((action) => ({
      action, resource: key.keyArn, context: { 'kms:EncryptionContext:aws:states:stateMachineArn': m.stateMachineArn },
    })),
    { action: 'kms:GenerateDataKey', resource: key.keyArn, context: { 'kms:EncryptionContext:SourceArn': `arn:aws:logs:${region}:${account}:*` } },
    ...['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries',
      'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'].map((action) => ({ action, resource: '*' })),
    ...(machineTracing(m) ? ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets']
      .map((action) => ({ action, resource: '*' })) : []),
  ];
}

/** @internal Waiting for a child execution (`.sync`): Step Functions manages a rule and describes or stops the child. */
export function runChild(child: sfn.StateMachine): AwsCall[] {
  const { region, account } = Stack.of(child);
  const execution = `arn:aws:states:${region}:${account}:execution:${machineName(child.stateMachineArn)}:run-1`;
  return [
    ...['states:DescribeExecution', 'states:StopExecution'].map((action) => ({ action, resource: execution })),
    ...['events:PutTargets', 'events:PutRule', 'events:DescribeRule'].map((action) => ({
      action, resource: `arn:aws:events:${region}:${account}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`,
    })),
  ];
}

