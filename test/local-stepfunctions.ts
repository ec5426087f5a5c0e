/**
 * aws-local-stepfunctions (JSONPath) running a synthesized definition (test/ingestion/asl.ts `definitionOf`) to its
 * end, its Task states served by the test's handlers.
 */

interface LocalExecution {
  readonly result: Promise<any>;
  readonly eventLogs: AsyncIterable<{ type: string; state?: { name: string } }>;
}
// The package is ESM with a CommonJS build; its types are declared for ESM importers only.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { StateMachine } = require('aws-local-stepfunctions') as {
  StateMachine: new (definition: unknown, options?: unknown) => { run(input: unknown, options?: unknown): LocalExecution };
};

/** What serves a Task state: the state's parameters in, its result out (a throw fails the task). */
export type TaskHandler = (input: any) => Promise<any>;

export interface LocalRunOptions {
  /** The context object (`$$`): the Execution's Id and StartTime at least. */
  readonly context: Record<string, unknown>;
  /** Task state name → what serves it. */
  readonly tasks: Record<string, TaskHandler>;
  /** Wait state name → the seconds actually waited (the others wait as defined). */
  readonly waits?: Record<string, number>;
}

export interface LocalRun {
  /** The states entered, in order, Map iterations' included. */
  readonly states: string[];
  /** The states retried, once a retry. */
  readonly retried: string[];
  readonly output?: any;
  /** Why the execution failed, as the runner says it. */
  readonly error?: string;
  /** The state machine's error (its name is the Error Step Functions reports), or the runner's own. */
  readonly failure?: Error;
}

/** Runs one execution; retries are not waited. Never throws for a failed execution: see `error`. */
export async function runLocally(definition: Record<string, any>, input: unknown, options: LocalRunOptions): Promise<LocalRun> {
  const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  const execution = machine.run(input, {
    context: options.context,
    overrides: {
      taskResourceLocalHandlers: options.tasks,
      retryIntervalOverrides: Object.fromEntries(allStates(definition.States).map((s) => [s, 0])),
      waitTimeOverrides: options.waits ?? {},
    },
  });
  const states: string[] = [];
  const retried: string[] = [];
  const logs = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') states.push(event.state!.name);
      if (event.type === 'StateRetried') retried.push(event.state!.name);
    }
  })();
  try {
    const output = await execution.result;
    await logs;
    return { states, retried, output };
  } catch (e) {
    await logs;
    const error = e as Error;
    return { states, retried, error: error.message, failure: (error.cause as Error | undefined) ?? error };
  }
}

/** The names of a definition's states, those of its Map states' processors included. */
function allStates(states: Record<string, any>): string[] {
  return Object.entries(states).flatMap(([name, s]) => [name, ...(s.ItemProcessor ? allStates(s.ItemProcessor.States) : [])]);
}
