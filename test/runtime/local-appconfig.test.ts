import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfigDataClient, GetLatestConfigurationCommand, StartConfigurationSessionCommand } from '@aws-sdk/client-appconfigdata';
import { flagValues, LocalAppConfig } from './local-appconfig';
import { CapturedOutput, captureOutput } from './output';
import { fetchFlagsAt, pollIntervalOf } from '../../src/runtime/flags';
import { isolatedAwsEnv, restoreEnv } from '../local-aws';

/**
 * The local AppConfig Data follows the service's session rules (the real SDK client over HTTP), and the flags'
 * reader (src/runtime/flags.ts, in process) keeps within them: the session asks for the cache time as its poll
 * interval, polls no earlier, and a refused poll answers from the last flags read.
 */

const PROFILE = 'ons/dev/flags';
const CREDENTIALS = { accessKeyId: 'LOCAL', secretAccessKey: 'LOCAL' };
const appconfig = new LocalAppConfig();
let endpoint: string;
let scratch: string;
let client: AppConfigDataClient;
let time: number;

beforeAll(async () => {
  endpoint = await appconfig.start();
  scratch = mkdtempSync(join(tmpdir(), 'ons-appconfig-'));
  client = new AppConfigDataClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
});

afterAll(async () => {
  client.destroy();
  await appconfig.close();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  appconfig.reset();
  appconfig.profiles.set(PROFILE, flagValues());
  time = Date.UTC(2026, 11, 7, 12);
  appconfig.now = () => time;
});

const start = (RequiredMinimumPollIntervalInSeconds?: number) => client.send(new StartConfigurationSessionCommand({
  ApplicationIdentifier: 'ons', EnvironmentIdentifier: 'dev', ConfigurationProfileIdentifier: 'flags', RequiredMinimumPollIntervalInSeconds,
}));
const poll = (ConfigurationToken: string | undefined) => client.send(new GetLatestConfigurationCommand({ ConfigurationToken }));
const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('utf8');

describe('the local AppConfig Data (as the service: StartConfigurationSession, GetLatestConfiguration)', () => {
  test('default interval 60 s: a poll 59 s after the last is refused (BadRequestException), at 60 s it answers with an empty body', async () => {
    const { InitialConfigurationToken } = await start();
    const first = await poll(InitialConfigurationToken);
    expect(JSON.parse(text(first.Configuration))).toEqual(flagValues());
    expect(first.NextPollIntervalInSeconds).toBe(60);

    time += 59_000;
    await expect(poll(first.NextPollConfigurationToken)).rejects.toMatchObject({ name: 'BadRequestException' });
    // The refused call does not consume the token.
    time += 1_000;
    const second = await poll(first.NextPollConfigurationToken);
    expect(text(second.Configuration)).toBe('');
    expect(appconfig.answers).toEqual([
      'POST /configurationsessions 201', 'GET /configuration 200', 'GET /configuration 400 BadRequestException', 'GET /configuration 200 empty',
    ]);
  });

  test('a token is good for one call: used twice, the second is a BadRequestException', async () => {
    const { InitialConfigurationToken } = await start();
    await poll(InitialConfigurationToken);
    await expect(poll(InitialConfigurationToken)).rejects.toMatchObject({ name: 'BadRequestException' });
  });

  test('a changed configuration is served in full at the next allowed poll', async () => {
    const { InitialConfigurationToken } = await start(15);
    const first = await poll(InitialConfigurationToken);
    appconfig.profiles.set(PROFILE, flagValues({ ragQueries: { enabled: false } }));
    time += 15_000;
    const second = await poll(first.NextPollConfigurationToken);
    expect(JSON.parse(text(second.Configuration)).ragQueries).toEqual({ enabled: false });
    expect(second.NextPollIntervalInSeconds).toBe(15);
  });

  test('a token expires after 24 hours', async () => {
    const { InitialConfigurationToken } = await start();
    time += 24 * 3600 * 1000;
    await expect(poll(InitialConfigurationToken)).rejects.toMatchObject({ name: 'BadRequestException' });
  });

  test.each([14, 86401])('RequiredMinimumPollIntervalInSeconds %d (outside 15..86400): BadRequestException', async (interval) => {
    await expect(start(interval)).rejects.toMatchObject({ name: 'BadRequestException' });
  });
});

describe('the flags reader against it', () => {
  let output: CapturedOutput;
  let offset = 0;
  let now: jest.SpyInstance;
  const where = { application: 'ons', environment: 'dev', profile: 'flags', maxAge: 15 };

  beforeEach(() => {
    output = captureOutput();
    const env = {
      ...isolatedAwsEnv(scratch),
      AWS_ENDPOINT_URL_APPCONFIGDATA: endpoint,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_MAX_ATTEMPTS: '1',
    };
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    // The reader's clock (Powertools' cache) and the server's move together.
    const realNow = Date.now.bind(Date);
    offset = 0;
    now = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    appconfig.now = () => time + offset;
  });

  afterEach(() => {
    now.mockRestore();
    output.restore();
    restoreEnv();
  });

  test('the session asks for the cache time as its poll interval; reads inside it answer from the cache, the next one after it polls', async () => {
    expect((await fetchFlagsAt(where)).ragQueries).toEqual({ enabled: true });
    offset = 14_000;
    await fetchFlagsAt(where);
    expect(appconfig.sessions).toEqual([{ profile: PROFILE, intervalSeconds: 15 }]);
    expect(appconfig.answers).toEqual(['POST /configurationsessions 201', 'GET /configuration 200']);

    offset = 15_500;
    appconfig.profiles.set(PROFILE, flagValues({ ragQueries: { enabled: false } }));
    expect((await fetchFlagsAt(where)).ragQueries).toEqual({ enabled: false });
    expect(appconfig.answers).toEqual(['POST /configurationsessions 201', 'GET /configuration 200', 'GET /configuration 200']);
    expect(output.error).not.toHaveBeenCalled();
  });

  test('a refused poll (BadRequestException): the last flags read answer, logged as a warning; the next read starts a new session', async () => {
    // Another profile: the reader keeps one session per profile for the module's life.
    const other = { ...where, profile: 'other-flags', maxAge: 20 };
    appconfig.profiles.set('ons/dev/other-flags', flagValues({ timeSeriesApi: { enabled: false } }));
    const first = await fetchFlagsAt(other);
    appconfig.expireTokens();
    offset = 21_000;

    const refused = await fetchFlagsAt(other);
    const renewed = await fetchFlagsAt(other);

    expect([first, refused, renewed].map((f) => f.timeSeriesApi)).toEqual([{ enabled: false }, { enabled: false }, { enabled: false }]);
    expect(appconfig.answers.slice(-3)).toEqual(['GET /configuration 400 BadRequestException', 'POST /configurationsessions 201', 'GET /configuration 200']);
    expect(output.error.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
      expect.objectContaining({ level: 'WARN', message: expect.stringContaining('AppConfig refused the poll') }),
    ]);
  });

  test('no flags read yet and AppConfig refusing: the error is thrown (the caller decides: on, or down)', async () => {
    await expect(fetchFlagsAt({ ...where, profile: 'absent' })).rejects.toMatchObject({ cause: { name: 'ResourceNotFoundException' } });
  });
});

test('pollIntervalOf: unset or not a number is 60 s; clamped to 15..86400; rounded up to whole seconds', () => {
  expect([undefined, '', 'x', '5', 15, '59.2', 86401].map(pollIntervalOf)).toEqual([60, 60, 60, 15, 15, 60, 86400]);
});
