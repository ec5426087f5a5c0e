import { writeFile } from 'node:fs/promises';
import { EvalQuestion, EvaluationTotals, QuestionScore, QuestionSet, scoreAnswer, ScoredResponse, totals } from './score';

/**
 * `ons-data-platform evaluate`: asks a deployed API (`POST /query`) every question of an evaluation set and
 * scores the answers (score.ts). Throttled answers (429) are retried with backoff; anything that makes the
 * whole run pointless (a URL that is not the API, no route, no key) stops it with a reason a person can act on.
 */

export interface EvaluateSettings {
  /** The API's base URL (the stage URL, e.g. `https://abc.execute-api.us-east-1.amazonaws.com/prod`). */
  readonly api: URL;
  readonly apiKey?: string;
  readonly set: QuestionSet;
  readonly setPath: string;
  readonly concurrency: number;
  /** Tries of a question answered 429 or 503, the first included. */
  readonly maxAttempts?: number;
  /** Wait before the second try when the API names none (Retry-After); doubled for each further try. */
  readonly retryBaseMs?: number;
  /** The longest wait between two tries. */
  readonly retryMaxMs?: number;
  /** How long one answer may take (API Gateway ends an integration at 29 s). */
  readonly timeoutMs?: number;
  /** Called after each question, for progress. */
  readonly onResult?: (done: number, result: QuestionResult) => void;
}

/** A question that got no scorable answer. */
export interface QuestionError {
  readonly id: string;
  readonly language: 'pt' | 'en';
  readonly kind: string;
  readonly pass: false;
  readonly error: string;
  /** The HTTP status, when the API answered. */
  readonly status?: number;
}

export type QuestionResult = (QuestionScore | QuestionError) & { readonly question: string; readonly attempts: number };

export interface EvaluationReport {
  readonly api: string;
  readonly set: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly totals: EvaluationTotals;
  readonly results: readonly QuestionResult[];
}

/** The run cannot go on (the API is unreachable, refuses us, or is not the API): the message says what to check. */
export class EvaluationAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvaluationAborted';
  }
}

/** `POST {base}/query`: the base URL with or without its trailing slash. */
export function queryUrl(api: URL): URL {
  const base = api.href.endsWith('/') ? api.href : `${api.href}/`;
  return new URL('query', base);
}

interface Answer {
  readonly response?: ScoredResponse;
  readonly error?: string;
  readonly status?: number;
  /** The failure says the URL or the key is wrong, whatever the question: stop the run. */
  readonly fatal?: boolean;
  readonly attempts: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Asks one question, retrying 429 and 503 answers. */
async function ask(settings: EvaluateSettings, question: EvalQuestion): Promise<Answer> {
  const url = queryUrl(settings.api);
  const maxAttempts = settings.maxAttempts ?? 5;
  const base = settings.retryBaseMs ?? 1000;
  const max = settings.retryMaxMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept': 'application/json', ...(settings.apiKey ? { 'x-api-key': settings.apiKey } : {}) },
        body: JSON.stringify({ question: question.question }),
        signal: AbortSignal.timeout(settings.timeoutMs ?? 60_000),
      });
    } catch (error) {
      const e = error as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError') return { error: `no answer within ${(settings.timeoutMs ?? 60_000) / 1000} s`, attempts: attempt };
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      return {
        error: `cannot reach the API at ${url.origin}: ${why} (check --api: the stage's base URL of a deployed stack, reachable from here)`,
        fatal: true,
        attempts: attempt,
      };
    }
    const text = await res.text();
    if ((res.status === 429 || res.status === 503) && attempt < maxAttempts) {
      // Retry-After in seconds when the API names it; else exponential backoff with jitter.
      const after = Number(res.headers.get('retry-after'));
      const wait = Number.isFinite(after) && after > 0 ? after * 1000 : base * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
      await sleep(Math.min(wait, max));
      continue;
    }
    if (!res.ok) return { ...httpError(res, text, url, settings.apiKey !== undefined), attempts: attempt };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return {
        error: `the API answered ${res.status} with ${res.headers.get('content-type') ?? 'no content type'} that is not JSON (${JSON.stringify(text.slice(0, 80))}): `
          + 'is --api the base URL of the platform\'s API (the stage URL, without /query)?',
        status: res.status,
        fatal: true,
        attempts: attempt,
      };
    }
    if (!body || typeof body !== 'object' || typeof (body as ScoredResponse).answer !== 'string') {
      return { error: `the API answered ${res.status} with JSON that has no "answer" text: ${text.slice(0, 120)}`, status: res.status, attempts: attempt };
    }
    return { response: body as ScoredResponse, attempts: attempt };
  }
}

/** What a failed HTTP answer means for the run, in words a person can act on. */
function httpError(res: Response, text: string, url: URL, hasKey: boolean): Omit<Answer, 'attempts'> {
  const detail = text.slice(0, 200).replace(/\s+/g, ' ');
  const status = res.status;
  if (status === 403 || status === 401) {
    const hint = hasKey ? 'the key in --api-key-env is not accepted (wrong key, or not in the API\'s usage plan)' : 'the API needs a key: --api-key-env NAME, with the key in the environment variable NAME';
    return { error: `the API refused the request (${status}): ${hint}. Body: ${detail}`, status, fatal: true };
  }
  if (status === 404) return { error: `no POST /query at ${url.href} (404): is --api the stage's base URL? Body: ${detail}`, status, fatal: true };
  if (status === 429 || status === 503) return { error: `still throttled (${status}) after every retry: run again later or with a lower --concurrency. Body: ${detail}`, status };
  return { error: `the API answered ${status}: ${detail}`, status };
}

/** Asks every question (the first alone, so a wrong URL or key stops the run at once) and scores the answers. */
export async function evaluate(settings: EvaluateSettings): Promise<EvaluationReport> {
  const startedAt = new Date().toISOString();
  const questions = settings.set.questions;
  const results: QuestionResult[] = new Array(questions.length);
  let done = 0;
  let aborted: EvaluationAborted | undefined;

  const run = async (i: number) => {
    const question = questions[i];
    const answer = await ask(settings, question);
    if (answer.fatal) {
      aborted ??= new EvaluationAborted(answer.error!);
      return;
    }
    const base = { question: question.question, attempts: answer.attempts };
    results[i] = answer.response
      ? { ...scoreAnswer(question, answer.response), ...base }
      : {
        id: question.id,
        language: question.language,
        kind: question.kind,
        pass: false,
        error: answer.error!,
        ...(answer.status ? { status: answer.status } : {}),
        ...base,
      };
    settings.onResult?.(++done, results[i]);
  };

  if (questions.length) await run(0);
  let next = 1;
  const worker = async () => {
    while (!aborted && next < questions.length) await run(next++);
  };
  if (!aborted) await Promise.all(Array.from({ length: Math.min(settings.concurrency, Math.max(questions.length - 1, 0)) }, worker));
  if (aborted) throw aborted;

  const scores = results.filter((r): r is QuestionScore & QuestionResult => !('error' in r));
  return {
    api: settings.api.href,
    set: settings.setPath,
    startedAt,
    finishedAt: new Date().toISOString(),
    totals: totals(questions, scores),
    results,
  };
}

/** Writes the report to a file, as printed. */
export async function writeReport(path: string, report: EvaluationReport): Promise<void> {
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
