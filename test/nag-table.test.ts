import { readFileSync } from 'node:fs';
import { acknowledgements, nagTable, NAG_END, NAG_START, README } from '../build-tools/nag-table';

/**
 * README "cdk-nag" lists every acknowledgement of the synthesized PROD platform (all engines): a new or changed
 * acknowledgement without `npx projen docs:nag` fails here.
 */
describe('README cdk-nag acknowledgement table', () => {
  const table = nagTable();

  test('is the one build-tools/nag-table.ts generates (npx projen docs:nag)', () => {
    const readme = readFileSync(README, 'utf8');
    const section = readme.slice(readme.indexOf(NAG_START), readme.indexOf(NAG_END) + NAG_END.length);
    expect(section).toEqual(table);
  });

  test('names the rules this issue acknowledges, with reasons, and the Resource::* reason lists its actions', () => {
    const rows = acknowledgements();
    for (const rule of ['NIST.800.53.R5-IAMNoInlinePolicy', 'NIST.800.53.R5-LambdaDLQ', 'NIST.800.53.R5-LambdaInsideVPC', 'Serverless-SQSRedrivePolicy']) {
      expect(rows.some((r) => r.rule === rule && r.reason.length > 20)).toBe(true);
    }
    const star = rows.filter((r) => r.rule === 'AwsSolutions-IAM5[Resource::*]');
    expect(star.length).toBeGreaterThan(0);
    // The Timestream and Bedrock wildcards are named where they are granted, not hidden behind an X-Ray-only reason.
    expect(star.some((r) => r.reason.includes('timestream:DescribeEndpoints'))).toBe(true);
    expect(star.some((r) => r.reason.includes('bedrock:RetrieveAndGenerate'))).toBe(true);
    expect(star.every((r) => !/X-Ray is the only|only wildcards on \* in this role/.test(r.reason))).toBe(true);
  });
});

test('the functions run the newest Node.js runtime: no runtime finding is acknowledged', () => {
  const rules = acknowledgements().map((r) => r.rule);
  expect(rules.filter((r) => r === 'AwsSolutions-L1' || r === 'Serverless-LambdaLatestVersion')).toEqual([]);
});
