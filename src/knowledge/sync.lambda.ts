import type { Context } from 'aws-lambda';
import { KnowledgeSyncEnv, KnowledgeSyncInput } from './contract';
import { SyncDeps, syncAction } from './runtime/sync';
import { LedgerEnv } from '../ledger/contract';
import { Ledger } from '../ledger/runtime/ledger';
import { createDocumentClient, requiredEnv } from '../runtime/handler';
import { flushMetrics, startInvocation } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: SyncDeps | undefined;

/** The knowledge-base sync's ledger work (lease, claim, outcome): one action per call of the sync state machine. */
export async function handler(event: KnowledgeSyncInput, context?: Context): Promise<unknown> {
  startInvocation(context, { executionArn: typeof event?.holder === 'string' ? event.holder : undefined });
  try {
    if (!deps) {
      const client = createDocumentClient();
      const table = requiredEnv(LedgerEnv.TABLE);
      deps = { client, table, ledger: new Ledger(client, table), knowledgeBaseId: requiredEnv(KnowledgeSyncEnv.KB_ID) };
    }
    return await syncAction(event, deps);
  } finally {
    flushMetrics(); // KnowledgeBaseSyncJobsFailed
  }
}
