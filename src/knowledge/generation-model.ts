import { Annotations, Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** The default model that writes answers: Amazon Nova Lite. */
export const DEFAULT_GENERATION_MODEL = 'amazon.nova-lite-v1:0';

/**
 * Where Amazon Nova Lite answers on demand, from the Amazon Bedrock user guide, "Supported Regions and models for
 * batch inference" (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-supported.html, read
 * 2026-12-07; the per-model table of "Model support by AWS Region" is rendered client-side and could not be read):
 * the foundation model itself in us-east-1, and the system-defined cross-Region inference profile of each geography
 * (`us.`, `eu.`, `apac.`) from the Regions listed under "Regions supporting inference profile", whose destinations
 * are the same Regions of that geography.
 */
const NOVA_LITE_IN_REGION = ['us-east-1'];
const NOVA_LITE_PROFILES: Record<string, string[]> = {
  us: ['us-east-1', 'us-east-2', 'us-west-2'],
  eu: ['eu-central-1', 'eu-north-1', 'eu-south-1', 'eu-south-2', 'eu-west-1', 'eu-west-3'],
  apac: ['ap-northeast-1', 'ap-northeast-2', 'ap-south-1', 'ap-southeast-1', 'ap-southeast-2'],
};

/** The model (id or inference profile id) and the foundation-model ARNs the query function may invoke. */
export interface ResolvedGenerationModel {
  readonly model: string;
  readonly foundationModelArns: string[];
}

/**
 * The default generation model for the stack's region: Nova Lite in-region where it runs on demand, else its
 * geography's inference profile (with the foundation model in every Region the profile routes to); in any other
 * region, or one unknown at synth, the in-region model and a warning naming `generationModel` and where Nova Lite runs.
 */
export function defaultGenerationModel(scope: Construct): ResolvedGenerationModel {
  const stack = Stack.of(scope);
  const region = stack.region;
  const inRegion = { model: DEFAULT_GENERATION_MODEL, foundationModelArns: [] };
  if (Token.isUnresolved(region)) {
    Annotations.of(scope).addWarningV2('ons-data-platform:generationModelRegion',
      `generationModel: the stack's region is unknown at synth, so the default ${DEFAULT_GENERATION_MODEL} is invoked in the ` +
      `region you deploy to; it runs on demand only in ${NOVA_LITE_IN_REGION.join(', ')}. Elsewhere set generationModel ` +
      `to an inference profile (${Object.keys(NOVA_LITE_PROFILES).map((g) => `${g}.${DEFAULT_GENERATION_MODEL}`).join(', ')}) ` +
      'or a model that runs in your region, or give the stack an env with a region.');
    return inRegion;
  }
  if (NOVA_LITE_IN_REGION.includes(region)) return inRegion;
  const geography = Object.keys(NOVA_LITE_PROFILES).find((g) => NOVA_LITE_PROFILES[g].includes(region));
  if (!geography) {
    const regions = [...new Set([...NOVA_LITE_IN_REGION, ...Object.values(NOVA_LITE_PROFILES).flat()])];
    // A warning, not an error: AWS adds Regions faster than this table, and the user may have access we cannot see.
    Annotations.of(scope).addWarningV2('ons-data-platform:generationModelRegion',
      `generationModel: the default ${DEFAULT_GENERATION_MODEL} is not documented to run on demand or through an inference ` +
      `profile in ${region} (it does in ${regions.join(', ')}); set generationModel to a model or inference profile that runs ` +
      `in ${region} (https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html), or questions will fail.`);
    return inRegion;
  }
  return {
    model: `${geography}.${DEFAULT_GENERATION_MODEL}`,
    foundationModelArns: NOVA_LITE_PROFILES[geography].map((r) => `arn:${stack.partition}:bedrock:${r}::foundation-model/${DEFAULT_GENERATION_MODEL}`),
  };
}
