import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

/**
 * The synthesized definition of a state machine as plain JSON: `Fn::Join` parts that are references
 * (function ARNs, bucket names, table names...) become readable placeholders, so the ASL can be
 * validated and run locally.
 */
export function definitionOf(stack: Stack, logicalIdPrefix: string): Record<string, any> {
  const template = Template.fromStack(stack).toJSON();
  const [id, machine] = Object.entries<any>(template.Resources)
    .find(([logicalId, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && logicalId.startsWith(logicalIdPrefix)) ?? [];
  if (!machine) throw new Error(`no state machine whose logical ID starts with ${logicalIdPrefix}`);
  const body = machine.Properties.DefinitionString;
  const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((part: unknown) => placeholder(part, template.Resources)).join('');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`definition of ${id} is not JSON: ${(error as Error).message}`);
  }
}

function placeholder(part: unknown, resources: Record<string, any>): string {
  if (typeof part === 'string') return part;
  const p = part as Record<string, any>;
  if (p.Ref === 'AWS::Partition') return 'aws';
  if (p.Ref === 'AWS::Region') return 'sa-east-1';
  if (p.Ref === 'AWS::AccountId') return '123456789012';
  if (p.Ref) return placeholderFor(p.Ref, resources, 'Ref');
  if (p['Fn::GetAtt']) return placeholderFor(p['Fn::GetAtt'][0], resources, p['Fn::GetAtt'][1]);
  throw new Error(`unexpected definition part ${JSON.stringify(part)}`);
}

function placeholderFor(logicalId: string, resources: Record<string, any>, attribute: string): string {
  const type: string = resources[logicalId]?.Type ?? 'Unknown';
  if (type === 'AWS::Lambda::Function') return `arn:aws:lambda:sa-east-1:123456789012:function:${logicalId}`;
  if (type === 'AWS::SNS::Topic') return `arn:aws:sns:sa-east-1:123456789012:${logicalId}`;
  if (type === 'AWS::StepFunctions::StateMachine') return `arn:aws:states:sa-east-1:123456789012:stateMachine:${logicalId}`;
  if (type === 'AWS::Batch::JobQueue') return `arn:aws:batch:sa-east-1:123456789012:job-queue/${logicalId}`;
  if (type === 'AWS::Batch::JobDefinition') return `arn:aws:batch:sa-east-1:123456789012:job-definition/${logicalId}:1`;
  return attribute === 'Arn' ? `arn:aws:${logicalId}` : logicalId.toLowerCase();
}
