import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LedgerKey } from '../contract';

/** One UpdateItem on a ledger table item: its expressions with their aliases. */
export interface ItemUpdate {
  readonly update: string;
  /** Unset: the update applies whatever the item holds. */
  readonly condition?: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
  /** Return the item as written (`ReturnValues: ALL_NEW`). */
  readonly returnNew?: boolean;
}

/** Sends the update and returns the item as written when asked; a condition that does not hold throws ConditionalCheckFailedException. */
export async function updateItem(
  client: DynamoDBDocumentClient, table: string, key: LedgerKey, item: ItemUpdate,
): Promise<Record<string, unknown> | undefined> {
  const { Attributes } = await client.send(new UpdateCommand({
    TableName: table,
    Key: key,
    UpdateExpression: item.update,
    ConditionExpression: item.condition,
    ExpressionAttributeNames: item.names,
    ExpressionAttributeValues: item.values,
    ...(item.returnNew ? { ReturnValues: 'ALL_NEW' } : {}),
  }));
  return Attributes;
}

/** The update when its condition holds: true when written, false when not (any other error is thrown). */
export async function updateIf(client: DynamoDBDocumentClient, table: string, key: LedgerKey, item: ItemUpdate): Promise<boolean> {
  try {
    await updateItem(client, table, key, item);
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as Error)?.name === 'ConditionalCheckFailedException';
}
