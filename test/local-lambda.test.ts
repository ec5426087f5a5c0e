import {
  InvokeCommand, LambdaClient, RequestTooLargeException, ResourceNotFoundException, TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { LocalLambda, MAX_PAYLOAD_BYTES, parseFunctionName } from './local-lambda';

/**
 * The local Lambda Invoke endpoint itself, with the real SDK client: names, ARNs and qualifiers resolved as the
 * service resolves them (an alias answers only when asked by its qualifier), results and thrown errors in the
 * runtime's shape, and the service's refusals (unknown function, payload over 6 MB, throttling, async calls).
 */

const ALIAS_ARN = 'arn:aws:lambda:sa-east-1:123456789012:function:ons-timeseries-query:live';

let lambda: LocalLambda;
let client: LambdaClient;

beforeAll(async () => {
  lambda = new LocalLambda();
  // One attempt: the SDK retries 429s, which would hide what the fake answered.
  const endpoint = await lambda.start();
  client = new LambdaClient({ endpoint, region: 'sa-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  lambda.register(ALIAS_ARN, async (event: any, context) => ({
    statusCode: 200,
    body: JSON.stringify({ echo: event, arn: context.invokedFunctionArn }),
  }));
  lambda.register('failing', async () => {
    throw new TypeError('boom');
  });
  lambda.register('big', async () => 'x'.repeat(MAX_PAYLOAD_BYTES));
  lambda.register('versioned:7', (event: any) => event.n * 2);
});

afterAll(async () => {
  client?.destroy();
  await lambda?.close();
});

beforeEach(() => {
  lambda.reset();
  lambda.throttle = undefined;
});

const payload = (value: unknown) => Buffer.from(JSON.stringify(value));
const decode = (bytes?: Uint8Array) => JSON.parse(Buffer.from(bytes!).toString('utf8'));
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e) => e);

test('an alias ARN (URL-encoded in the path) runs the handler: its JSON result, 200 and the executed version', async () => {
  const out = await client.send(new InvokeCommand({ FunctionName: ALIAS_ARN, Payload: payload({ httpMethod: 'GET', path: '/timeseries/curva_carga' }) }));
  expect(out.StatusCode).toBe(200);
  expect(out.FunctionError).toBeUndefined();
  expect(out.ExecutedVersion).toBe('1');
  expect(decode(out.Payload)).toEqual({ statusCode: 200, body: JSON.stringify({ echo: { httpMethod: 'GET', path: '/timeseries/curva_carga' }, arn: ALIAS_ARN }) });
  expect(lambda.of('ons-timeseries-query')).toEqual([expect.objectContaining({ functionName: ALIAS_ARN, qualifier: 'live', invocationType: 'RequestResponse', status: 200 })]);
  // The same alias by name and Qualifier.
  const byName = await client.send(new InvokeCommand({ FunctionName: 'ons-timeseries-query', Qualifier: 'live', Payload: payload({}) }));
  expect(byName.StatusCode).toBe(200);
});

test('the function without its alias, or another function, is not found (404)', async () => {
  for (const FunctionName of ['ons-timeseries-query', 'arn:aws:lambda:sa-east-1:123456789012:function:ons-timeseries-query', 'nope']) {
    const e = await failure(client.send(new InvokeCommand({ FunctionName, Payload: payload({}) })));
    expect(e).toBeInstanceOf(ResourceNotFoundException);
    expect(e.$metadata.httpStatusCode).toBe(404);
  }
});

test('a thrown error: 200 with X-Amz-Function-Error Unhandled and the runtime\'s error payload', async () => {
  const out = await client.send(new InvokeCommand({ FunctionName: 'failing', Payload: payload({}) }));
  expect(out.StatusCode).toBe(200);
  expect(out.FunctionError).toBe('Unhandled');
  expect(out.ExecutedVersion).toBe('$LATEST');
  expect(decode(out.Payload)).toEqual(expect.objectContaining({ errorType: 'TypeError', errorMessage: 'boom' }));
});

test('a result over 6 MB is the runtime\'s ResponseSizeTooLarge error', async () => {
  const out = await client.send(new InvokeCommand({ FunctionName: 'big', Payload: payload({}) }));
  expect(out.FunctionError).toBe('Unhandled');
  expect(decode(out.Payload).errorType).toBe('Function.ResponseSizeTooLarge');
});

test('a payload over 6 MB is refused 413 before the handler runs; 6 MB exactly is accepted', async () => {
  let ran = 0;
  lambda.register('counter', () => ++ran);
  const over = Buffer.from(JSON.stringify({ pad: 'x'.repeat(MAX_PAYLOAD_BYTES) }));
  const e = await failure(client.send(new InvokeCommand({ FunctionName: 'counter', Payload: over })));
  expect(e).toBeInstanceOf(RequestTooLargeException);
  expect(e.$metadata.httpStatusCode).toBe(413);
  expect(ran).toBe(0);
  const exact = Buffer.from(JSON.stringify({ pad: 'x'.repeat(MAX_PAYLOAD_BYTES - 10) }));
  expect(exact.length).toBe(MAX_PAYLOAD_BYTES);
  const ok = await client.send(new InvokeCommand({ FunctionName: 'counter', Payload: exact }));
  expect(decode(ok.Payload)).toBe(1);
});

test('throttled: 429 TooManyRequestsException with its Reason, and the handler does not run', async () => {
  let ran = 0;
  lambda.register('throttled', () => ++ran);
  lambda.throttle = (r) => r.name === 'throttled';
  const e = await failure(client.send(new InvokeCommand({ FunctionName: 'throttled', Payload: payload({}) })));
  expect(e).toBeInstanceOf(TooManyRequestsException);
  expect(e.Reason).toBe('ReservedFunctionConcurrentInvocationLimitExceeded');
  expect(ran).toBe(0);
});

test('a numeric version answers by name:version; a qualifier conflicting with the ARN\'s is refused; async calls are refused', async () => {
  const out = await client.send(new InvokeCommand({ FunctionName: 'versioned:7', Payload: payload({ n: 21 }) }));
  expect(decode(out.Payload)).toBe(42);
  expect(out.ExecutedVersion).toBe('7');
  const conflict = await failure(client.send(new InvokeCommand({ FunctionName: ALIAS_ARN, Qualifier: 'other', Payload: payload({}) })));
  expect(conflict.name).toBe('InvalidParameterValueException');
  const event = await failure(client.send(new InvokeCommand({ FunctionName: ALIAS_ARN, InvocationType: 'Event', Payload: payload({}) })));
  expect(event.name).toBe('InvalidParameterValueException');
});

test('parseFunctionName takes the service\'s forms', () => {
  expect(parseFunctionName('f')).toEqual({ name: 'f', qualifier: undefined });
  expect(parseFunctionName('f:$LATEST')).toEqual({ name: 'f', qualifier: '$LATEST' });
  expect(parseFunctionName('123456789012:function:f:live')).toEqual(expect.objectContaining({ name: 'f', qualifier: 'live', account: '123456789012' }));
  expect(parseFunctionName(ALIAS_ARN)).toEqual({ name: 'ons-timeseries-query', qualifier: 'live', region: 'sa-east-1', account: '123456789012' });
  expect(parseFunctionName('arn:aws:s3:::bucket')).toBeUndefined();
  expect(parseFunctionName('f/../g')).toBeUndefined();
});
