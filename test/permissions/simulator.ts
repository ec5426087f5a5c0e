/**
 * The permission-closure harness: turns a synthesized stack into principals, identity and resource policies with
 * concrete (fake) ARNs, and evaluates declared calls with @cloud-copilot/iam-simulate (test-only, AGPL, never bundled).
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { Stack } from 'aws-cdk-lib';
import { AwsCall, CallerInventory, kmsCallsOf } from '../../src/core/permissions';

export const ACCOUNT = '111111111111';
export const REGION = 'us-east-1';

type Json = any;
interface Resource { Type: string; Properties?: Record<string, Json> }
export interface PolicyDoc { Version?: string; Statement: Json[] }

/** Resolves CloudFormation intrinsics to concrete ARNs and names, the way CloudFormation would in the fake account. */
export class TemplateResolver {
  private readonly resources: Record<string, Resource>;
  constructor(private readonly stack: Stack, template: Json) {
    this.resources = template.Resources;
  }

  /** Resolves a value that may hold CDK tokens (from an inventory) or intrinsics (from the template). */
  public value(v: unknown): Json {
    return this.intrinsic(this.stack.resolve(v));
  }

  public intrinsic(v: Json): Json {
    if (Array.isArray(v)) return v.map((x) => this.intrinsic(x));
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [k] = keys;
      const a = v[k];
      switch (k) {
        case 'Ref': return this.ref(a);
        case 'Fn::GetAtt': return this.getAtt(a[0], a[1]);
        case 'Fn::Join': return (this.intrinsic(a[1]) as string[]).join(a[0]);
        case 'Fn::Select': return this.intrinsic(a[1])[Number(this.intrinsic(a[0]))];
        case 'Fn::Split': return String(this.intrinsic(a[1])).split(a[0]);
        case 'Fn::Sub': {
          const [text, vars] = typeof a === 'string' ? [a, {}] : [a[0], this.intrinsic(a[1])];
          return text.replace(/\$\{([^}]+)\}/g, (_: string, name: string) => {
            if (name in vars) return vars[name];
            const [id, att] = name.split('.');
            return att ? this.getAtt(id, att) : this.ref(id);
          });
        }
        default: break;
      }
    }
    return Object.fromEntries(Object.entries(v).map(([key, x]) => [key, this.intrinsic(x)]));
  }

  private prop(id: string, name: string): string | undefined {
    const p = this.resources[id]?.Properties?.[name];
    return p === undefined ? undefined : String(this.intrinsic(p));
  }

  /** A resource's physical name: its name property when set, else the logical id (as CloudFormation would generate). */
  private nameOf(id: string): string {
    const r = this.resources[id];
    const prop = {
      'AWS::S3::Bucket': 'BucketName',
      'AWS::DynamoDB::Table': 'TableName',
      'AWS::Lambda::Function': 'FunctionName',
      'AWS::StepFunctions::StateMachine': 'StateMachineName',
      'AWS::SNS::Topic': 'TopicName',
      'AWS::SQS::Queue': 'QueueName',
      'AWS::Logs::LogGroup': 'LogGroupName',
      'AWS::IAM::Role': 'RoleName',
      'AWS::Events::Rule': 'Name',
      'AWS::S3Vectors::VectorBucket': 'VectorBucketName',
      'AWS::S3Vectors::Index': 'IndexName',
      'AWS::Batch::JobQueue': 'JobQueueName',
      'AWS::Batch::JobDefinition': 'JobDefinitionName',
      'AWS::Glue::Database': 'DatabaseInput',
      'AWS::Athena::WorkGroup': 'Name',
    }[r?.Type ?? ''];
    const named = prop && prop !== 'DatabaseInput' ? this.prop(id, prop) : undefined;
    if (named) return named;
    if (r?.Type === 'AWS::Glue::Database') return String(this.intrinsic(r.Properties?.DatabaseInput?.Name ?? id));
    return r?.Type === 'AWS::S3::Bucket' ? id.toLowerCase() : id;
  }

  public ref(id: string): string {
    switch (id) {
      case 'AWS::Partition': return 'aws';
      case 'AWS::Region': return REGION;
      case 'AWS::AccountId': return ACCOUNT;
      case 'AWS::URLSuffix': return 'amazonaws.com';
      case 'AWS::StackName': return this.stack.stackName;
      case 'AWS::NoValue': return '';
      default: break;
    }
    const r = this.resources[id];
    if (!r) throw new Error(`Ref ${id}: no such resource or parameter in the template`);
    switch (r.Type) {
      case 'AWS::KMS::Key': return `key-${id.toLowerCase()}`;
      case 'AWS::SNS::Topic': case 'AWS::StepFunctions::StateMachine': case 'AWS::Batch::JobQueue': case 'AWS::Batch::JobDefinition':
      case 'AWS::Lambda::Alias': case 'AWS::Lambda::Version': case 'AWS::Events::Rule':
        return this.getAtt(id, 'Arn');
      case 'AWS::SecretsManager::Secret': return this.getAtt(id, 'Arn');
      case 'AWS::SQS::Queue': return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.nameOf(id)}`;
      default: return this.nameOf(id);
    }
  }

  public getAtt(id: string, att: string): string {
    const r = this.resources[id];
    if (!r) throw new Error(`GetAtt ${id}.${att}: no such resource`);
    const name = this.nameOf(id);
    const arn = (service: string, rest: string, region = REGION) => `arn:aws:${service}:${region}:${ACCOUNT}:${rest}`;
    const byType: Record<string, () => string> = {
      'AWS::S3::Bucket': () => `arn:aws:s3:::${name}`,
      'AWS::KMS::Key': () => arn('kms', `key/${this.ref(id)}`),
      'AWS::IAM::Role': () => `arn:aws:iam::${ACCOUNT}:role/${name}`,
      'AWS::DynamoDB::Table': () => arn('dynamodb', `table/${name}`),
      'AWS::Lambda::Function': () => arn('lambda', `function:${name}`),
      'AWS::Lambda::Alias': () => `${this.intrinsicArnOfFunction(r.Properties!.FunctionName)}:${this.prop(id, 'Name')}`,
      'AWS::Lambda::Version': () => `${this.intrinsicArnOfFunction(r.Properties!.FunctionName)}:1`,
      'AWS::Logs::LogGroup': () => arn('logs', `log-group:${name}:*`),
      'AWS::SQS::Queue': () => arn('sqs', name),
      'AWS::SNS::Topic': () => arn('sns', name),
      'AWS::StepFunctions::StateMachine': () => arn('states', `stateMachine:${name}`),
      'AWS::Events::Rule': () => arn('events', `rule/${name}`),
      'AWS::Batch::JobQueue': () => arn('batch', `job-queue/${name}`),
      'AWS::Batch::JobDefinition': () => arn('batch', `job-definition/${name}:1`),
      'AWS::S3Vectors::VectorBucket': () => arn('s3vectors', `bucket/${name}`),
      'AWS::S3Vectors::Index': () => `${this.prop(id, 'VectorBucketArn') ?? arn('s3vectors', `bucket/${this.prop(id, 'VectorBucketName')}`)}/index/${name}`,
      'AWS::Bedrock::KnowledgeBase': () => arn('bedrock', `knowledge-base/${id}`),
      'AWS::Bedrock::DataSource': () => id,
      'AWS::Glue::Database': () => name,
      'AWS::AppConfig::Application': () => id,
      'AWS::AppConfig::Environment': () => id,
      'AWS::AppConfig::ConfigurationProfile': () => id,
      'AWS::CloudWatch::Alarm': () => arn('cloudwatch', `alarm:${id}`),
      'AWS::CloudWatch::CompositeAlarm': () => arn('cloudwatch', `alarm:${id}`),
      'AWS::ApiGateway::RestApi': () => id,
      'AWS::Timestream::InfluxDBInstance': () => arn('timestream-influxdb', `db-instance/${id}`),
      'AWS::SecretsManager::Secret': () => arn('secretsmanager', `secret:${id}-AbCdEf`),
      'AWS::Timestream::Database': () => arn('timestream', `database/${name}`),
      'AWS::Timestream::Table': () => arn('timestream', `database/${this.prop(id, 'DatabaseName')}/table/${this.prop(id, 'TableName') ?? id}`),
    };
    if (att === 'Arn' || att.endsWith('Arn') || att === 'TopicArn') {
      const make = byType[r.Type];
      if (!make) throw new Error(`GetAtt ${id}.${att}: no fake ARN for ${r.Type} (test/permissions/simulator.ts)`);
      return make();
    }
    if (att.endsWith('Id') || att === 'Name' || att.endsWith('Name')) return name;
    if (att === 'QueueUrl') return this.ref(id);
    return `${id}.${att}`;
  }

  private intrinsicArnOfFunction(fn: Json): string {
    const v = String(this.intrinsic(fn));
    return v.startsWith('arn:') ? v : `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${v}`;
  }
}

/** One principal's policies and the resource policies, all with concrete ARNs. */
export interface Principal {
  readonly arn: string;
  readonly logicalId: string;
  readonly identityPolicies: Array<{ name: string; policy: PolicyDoc }>;
}

/** The synthesized stack as the simulator sees it. */
export class SynthesizedPermissions {
  public readonly resolver: TemplateResolver;
  private readonly resources: Record<string, Resource>;
  /** Resource policies by the ARN (or ARN prefix, for a bucket) they govern. */
  private readonly resourcePolicies: Array<{ arn: string; objects: boolean; policy: PolicyDoc; source: string }> = [];

  constructor(public readonly stack: Stack, template: Json) {
    this.resources = template.Resources;
    this.resolver = new TemplateResolver(stack, template);
    for (const [id, r] of Object.entries(this.resources)) {
      const p = r.Properties ?? {};
      const doc = (d: Json) => this.resolver.intrinsic(d) as PolicyDoc;
      if (r.Type === 'AWS::KMS::Key') this.resourcePolicies.push({ arn: this.resolver.getAtt(id, 'Arn'), objects: false, policy: doc(p.KeyPolicy), source: `key policy ${id}` });
      if (r.Type === 'AWS::S3::BucketPolicy') {
        this.resourcePolicies.push({ arn: `arn:aws:s3:::${this.resolver.intrinsic(p.Bucket)}`, objects: true, policy: doc(p.PolicyDocument), source: `bucket policy ${id}` });
      }
      if (r.Type === 'AWS::SNS::TopicPolicy') {
        for (const t of p.Topics) this.resourcePolicies.push({ arn: this.resolver.intrinsic(t), objects: false, policy: doc(p.PolicyDocument), source: `topic policy ${id}` });
      }
      if (r.Type === 'AWS::SQS::QueuePolicy') {
        for (const q of p.Queues) {
          const url = String(this.resolver.intrinsic(q));
          const name = url.split('/').pop();
          this.resourcePolicies.push({ arn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`, objects: false, policy: doc(p.PolicyDocument), source: `queue policy ${id}` });
        }
      }
    }
  }

  /** The roles of the template by logical id. */
  public roleIds(): string[] {
    return Object.entries(this.resources).filter(([, r]) => r.Type === 'AWS::IAM::Role').map(([id]) => id);
  }

  /** A role's identity policies: its AWS::IAM::Policy attachments, inline policies and template-made managed policies. */
  public principal(roleLogicalId: string): Principal {
    const role = this.resources[roleLogicalId];
    if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${roleLogicalId}: not a role of the template`);
    const identityPolicies: Principal['identityPolicies'] = [];
    for (const [id, r] of Object.entries(this.resources)) {
      const attached = (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
        && (r.Properties?.Roles ?? []).some((x: Json) => x?.Ref === roleLogicalId);
      if (attached) identityPolicies.push({ name: id, policy: this.resolver.intrinsic(r.Properties!.PolicyDocument) });
    }
    for (const p of role.Properties?.Policies ?? []) identityPolicies.push({ name: p.PolicyName, policy: this.resolver.intrinsic(p.PolicyDocument) });
    for (const m of role.Properties?.ManagedPolicyArns ?? []) {
      const ref = m?.Ref;
      if (ref && this.resources[ref]?.Type === 'AWS::IAM::ManagedPolicy') {
        identityPolicies.push({ name: ref, policy: this.resolver.intrinsic(this.resources[ref].Properties!.PolicyDocument) });
      }
    }
    return { arn: this.resolver.getAtt(roleLogicalId, 'Arn'), logicalId: roleLogicalId, identityPolicies };
  }

  /** The role logical id behind a role construct of an inventory. */
  public roleLogicalIdOf(roleArn: string): string {
    const resolved = this.stack.resolve(roleArn);
    const id = resolved?.['Fn::GetAtt']?.[0];
    if (!id) throw new Error(`inventory principal ${JSON.stringify(resolved)}: not a role of this stack`);
    return id;
  }

  public resourcePolicyFor(arn: string): { policy: PolicyDoc; source: string } | undefined {
    return this.resourcePolicies.find((p) => arn === p.arn || (p.objects && arn.startsWith(`${p.arn}/`)));
  }
}

/** A call with its concrete values, ready to simulate. */
export interface ConcreteCall { readonly action: string; readonly resource: string; readonly context: Record<string, string | string[]> }

export interface Denial { caller: string; principal: string; action: string; resource: string; result: string; missing: string }

/** Makes every call of an inventory concrete, with the KMS calls its services make on its behalf. */
export function concreteCalls(perms: SynthesizedPermissions, calls: AwsCall[]): ConcreteCall[] {
  const r = perms.resolver;
  return calls.flatMap((c) => {
    const call: AwsCall = {
      action: c.action,
      resource: r.value(c.resource),
      kmsKey: c.kmsKey ? r.value(c.kmsKey) : undefined,
      context: c.context ? r.value(c.context) : undefined,
    };
    return [call, ...kmsCallsOf(call, REGION)].map((x) => ({ action: x.action, resource: x.resource, context: { ...(x.context ?? {}) } }));
  });
}

/**
 * iam-simulate (0.1.x) recognises variable context keys by a `/` (`aws:RequestTag/<key>`) and drops
 * `kms:EncryptionContext:<key>`, whose variable part follows a `:`. Both the policies and the request use the
 * equivalent variable key `aws:RequestTag/kmsec.<key>` instead: same operators, same values, so a grant scoped by
 * encryption context is evaluated rather than ignored.
 */
const EC = /^kms:EncryptionContext:/i;
const ecKey = (key: string) => key.replace(EC, 'aws:RequestTag/kmsec.');
function rewriteConditions(policy: PolicyDoc): PolicyDoc {
  return {
    ...policy,
    Statement: policy.Statement.map((st: Json) => !st.Condition ? st : {
      ...st,
      Condition: Object.fromEntries(Object.entries(st.Condition).map(([op, block]) => [
        op, Object.fromEntries(Object.entries(block as Json).map(([key, value]) => [ecKey(key), value])),
      ])),
    }),
  };
}

/** Simulates one call of a principal; a string saying what denies it, or undefined when allowed. */
export async function simulate(perms: SynthesizedPermissions, principal: Principal | string, call: ConcreteCall): Promise<string | undefined> {
  const resourcePolicy = perms.resourcePolicyFor(call.resource);
  const isService = typeof principal === 'string';
  const response = await runSimulation({
    request: {
      principal: isService ? principal : principal.arn,
      action: call.action,
      resource: { resource: call.resource, accountId: ACCOUNT },
      contextVariables: {
        ...(isService ? {} : { 'aws:PrincipalArn': principal.arn, 'aws:PrincipalAccount': ACCOUNT }),
        ...Object.fromEntries(Object.entries(call.context).map(([key, value]) => [ecKey(key), value])),
      },
    },
    identityPolicies: isService ? [] : principal.identityPolicies.map((p) => ({ name: p.name, policy: rewriteConditions(p.policy) })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicy && rewriteConditions(resourcePolicy.policy),
  } as any, {});
  if (response.resultType === 'error') return `simulation error: ${JSON.stringify(response.errors)}`;
  if (response.overallResult === 'Allowed') return undefined;
  // A context key the simulator dropped (unknown for the action) would make the answer meaningless: an inventory error.
  const ignored: string[] = (response as any).result?.ignoredContextKeys ?? [];
  if (ignored.length) return `context keys ${ignored.join(', ')} do not apply to ${call.action} (fix the inventory)`;
  const analysis = (response as any).result?.analysis;
  const identity = analysis?.identityAnalysis?.result;
  const resource = analysis?.resourceAnalysis?.result;
  const missing = [
    !isService && identity !== 'Allowed' ? `identity policy (${identity})` : '',
    resourcePolicy ? (resource !== 'Allowed' && resource !== 'AllowedForAccount' ? `${resourcePolicy.source} (${resource})` : '') : (isService ? 'no resource policy' : ''),
  ].filter(Boolean).join(' and ');
  return `${response.overallResult}: ${missing || 'see analysis'}`;
}

/** Every denied call of the inventories. */
export async function denials(perms: SynthesizedPermissions, inventories: CallerInventory[]): Promise<Denial[]> {
  const out: Denial[] = [];
  for (const inv of inventories) {
    const principal = typeof inv.principal === 'string' ? inv.principal : perms.principal(perms.roleLogicalIdOf(inv.principal.roleArn));
    for (const call of concreteCalls(perms, inv.calls)) {
      const denied = await simulate(perms, principal, call);
      if (denied) {
        const via = call.context['kms:ViaService'];
        out.push({
          caller: inv.name,
          principal: typeof principal === 'string' ? principal : principal.logicalId,
          action: via ? `${call.action} (via ${via})` : call.action,
          resource: call.resource,
          result: denied,
          missing: denied,
        });
      }
    }
  }
  return out;
}

/** Per caller (an inventory's name), granted actions that may stay unused, each with its reason. */
export type UnusedAllowed = Record<string, Record<string, string>>;

/** The allowlist entries that no configuration needed: stale reasons to remove. */
export function staleAllowances(perms: SynthesizedPermissions, inventories: CallerInventory[], allowed: UnusedAllowed): string[] {
  const unused = unusedGrants(perms, inventories, {});
  const names = new Set(inventories.map((i) => i.name));
  return Object.entries(allowed).flatMap(([caller, actions]) => names.has(caller)
    ? Object.keys(actions).filter((a) => !unused.some((u) => u.startsWith(`${caller} (`) && u.toLowerCase().includes(`: ${a.toLowerCase()} on `))).map((a) => `${caller}: ${a}`)
    : []);
}

const glob = (pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.split('?').map((q) => q.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('.')).join('.*')}$`, 'i');

/**
 * Granted actions no inventory call uses: one line per (principal, statement action, resources).
 * `allowed` lists, per caller (the inventory's name), the granted actions that may stay unused, each with a reason:
 * an unused grant of one principal is never hidden by another principal's entry.
 */
export function unusedGrants(perms: SynthesizedPermissions, inventories: CallerInventory[], allowed: UnusedAllowed): string[] {
  const out: string[] = [];
  for (const inv of inventories) {
    if (typeof inv.principal === 'string') continue;
    const principal = perms.principal(perms.roleLogicalIdOf(inv.principal.roleArn));
    const calls = concreteCalls(perms, inv.calls);
    for (const { name, policy } of principal.identityPolicies) {
      for (const s of policy.Statement.filter((x: Json) => x.Effect === 'Allow')) {
        const resources: string[] = [s.Resource].flat();
        for (const action of [s.Action].flat() as string[]) {
          if (Object.keys(allowed[inv.name] ?? {}).some((a) => a.toLowerCase() === action.toLowerCase())) continue;
          const used = calls.some((c) => glob(action).test(c.action) && resources.some((res) => glob(res).test(c.resource)));
          if (!used) out.push(`${inv.name} (${principal.logicalId}, ${name}): ${action} on ${resources.join(', ')}`);
        }
      }
    }
  }
  return out;
}
