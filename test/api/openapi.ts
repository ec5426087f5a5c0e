import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';

/**
 * The shipped OpenAPI document (openapi/ons-data-platform.json) and a check of response bodies against
 * its schemas, so handler tests prove that what the handlers answer is what the document promises.
 */

export const OPENAPI_PATH = join(__dirname, '..', '..', 'openapi', 'ons-data-platform.json');
export const openApi = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as {
  info: { version: string };
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, object> };
};

const ajv = new Ajv2020({ allErrors: true, strict: false });
// The API writes every instant in UTC with a Z: stricter than RFC 3339's date-time, on purpose.
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/);
ajv.addSchema({ $id: 'openapi', $defs: openApi.components.schemas } as object);
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

/** The errors of `body` against the component schema `name` (an empty list when it conforms). */
export function schemaErrors(name: string, body: unknown): string[] {
  if (!openApi.components.schemas[name]) throw new Error(`no schema ${name} in the OpenAPI document`);
  let validate = validators.get(name);
  if (!validate) {
    // Component schemas refer to each other as #/components/schemas/X: resolve them inside the registered document.
    const schema = JSON.parse(JSON.stringify(openApi.components.schemas[name]).replace(/#\/components\/schemas\//g, 'openapi#/$defs/'));
    validate = ajv.compile(schema);
    validators.set(name, validate);
  }
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

/** Fails the test when `body` does not conform to the component schema `name`. */
export function expectSchema(name: string, body: unknown): void {
  expect({ schema: name, errors: schemaErrors(name, body) }).toEqual({ schema: name, errors: [] });
}
