import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ITimeSeriesStore } from '../../src';

/** A Writer role granted write and a Reader role granted read on `store`, with the statements each role's policy got. */
export function grantedRoles(stack: Stack, store: ITimeSeriesStore) {
  const writer = new iam.Role(stack, 'Writer', { assumedBy: new iam.AccountRootPrincipal() });
  const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
  store.grantWrite(writer);
  store.grantRead(reader);
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
  const statementsOf = (prefix: string): any[] => Object.entries<any>(policies).filter(([id]) => id.startsWith(prefix))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  return { writer, reader, writerStatements: statementsOf('WriterDefaultPolicy'), readerStatements: statementsOf('ReaderDefaultPolicy') };
}
