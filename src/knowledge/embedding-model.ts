import { Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** Dimensions Amazon Titan Text Embeddings V2 can output. */
const TITAN_V2_DIMENSIONS = [1024, 512, 256];

/**
 * Options of `EmbeddingModel.titanTextV2()`.
 */
export interface TitanTextV2Options {
  /**
   * Length of the vectors (1024, 512 or 256). Smaller vectors cost less storage and search time for
   * a small loss of accuracy.
   *
   * @default 1024
   */
  readonly dimensions?: number;
}

/**
 * The Bedrock model that turns chunks and questions into vectors. Its dimension is the vector
 * index's dimension: both are taken from here.
 */
export class EmbeddingModel {
  /** Amazon Titan Text Embeddings V2 (`amazon.titan-embed-text-v2:0`): multilingual, Portuguese included. */
  public static titanTextV2(options: TitanTextV2Options = {}): EmbeddingModel {
    const dimensions = options.dimensions ?? 1024;
    if (!TITAN_V2_DIMENSIONS.includes(dimensions)) {
      throw new Error(`embeddingModel.dimensions: Titan Text Embeddings V2 outputs ${TITAN_V2_DIMENSIONS.join(', ')} dimensions, got ${dimensions}`);
    }
    return new EmbeddingModel('amazon.titan-embed-text-v2:0', dimensions);
  }

  /**
   * Any Bedrock foundation embedding model, by model id, with the dimension it outputs (1–4096).
   */
  public static custom(modelId: string, dimensions: number): EmbeddingModel {
    if (!Token.isUnresolved(modelId) && !/^[a-z0-9-]+\.[A-Za-z0-9._:-]+$/.test(modelId)) {
      throw new Error(`embeddingModel.modelId: '${modelId}' is not a Bedrock foundation model id (e.g. cohere.embed-multilingual-v3)`);
    }
    if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 4096) {
      throw new Error(`embeddingModel.dimensions: expected an integer from 1 to 4096, got ${dimensions}`);
    }
    return new EmbeddingModel(modelId, dimensions);
  }

  /**
   * @param modelId the Bedrock foundation model id
   * @param dimensions the length of the vectors the model outputs
   */
  private constructor(public readonly modelId: string, public readonly dimensions: number) {}

  /** The model's ARN in the region of `scope`'s stack (foundation models have no account). */
  public modelArn(scope: Construct): string {
    const stack = Stack.of(scope);
    return `arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${this.modelId}`;
  }
}
