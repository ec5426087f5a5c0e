import * as bedrock from 'aws-cdk-lib/aws-bedrock';

/** Options of `ChunkingStrategy.fixedSize()`. */
export interface FixedSizeChunkingOptions {
  /**
   * Largest chunk, in tokens (20–8192).
   *
   * @default 300
   */
  readonly maxTokens?: number;
  /**
   * Overlap between adjacent chunks, in percent (1–99).
   *
   * @default 20
   */
  readonly overlapPercentage?: number;
}

/** Options of `ChunkingStrategy.semantic()`. */
export interface SemanticChunkingOptions {
  /**
   * Largest chunk, in tokens (20–8192).
   *
   * @default 300
   */
  readonly maxTokens?: number;
  /**
   * Sentences on each side compared together (0–1).
   *
   * @default 0
   */
  readonly bufferSize?: number;
  /**
   * Dissimilarity percentile above which adjacent sentences are split (50–99).
   *
   * @default 95
   */
  readonly breakpointPercentileThreshold?: number;
}

/** Options of `ChunkingStrategy.hierarchical()`. */
export interface HierarchicalChunkingOptions {
  /**
   * Largest parent chunk, in tokens (1–8192).
   *
   * @default 1500
   */
  readonly maxParentTokens?: number;
  /**
   * Largest child chunk, in tokens (1–8192, at most `maxParentTokens`).
   *
   * @default 300
   */
  readonly maxChildTokens?: number;
  /**
   * Tokens repeated between adjacent chunks of a layer (1 or more).
   *
   * @default 60
   */
  readonly overlapTokens?: number;
}

/**
 * How Bedrock splits documents and data cards into chunks before embedding them.
 */
export class ChunkingStrategy {
  /** Chunks of about `maxTokens` tokens with an overlap (default: 300 tokens, 20 %). */
  public static fixedSize(options: FixedSizeChunkingOptions = {}): ChunkingStrategy {
    const maxTokens = integer('chunking.maxTokens', options.maxTokens ?? 300, 20, 8192);
    const overlapPercentage = integer('chunking.overlapPercentage', options.overlapPercentage ?? 20, 1, 99);
    return new ChunkingStrategy({ chunkingStrategy: 'FIXED_SIZE', fixedSizeChunkingConfiguration: { maxTokens, overlapPercentage } });
  }

  /** Chunks that follow the meaning of the text (sentences grouped by similarity; costs embedding calls at ingestion). */
  public static semantic(options: SemanticChunkingOptions = {}): ChunkingStrategy {
    return new ChunkingStrategy({
      chunkingStrategy: 'SEMANTIC',
      semanticChunkingConfiguration: {
        maxTokens: integer('chunking.maxTokens', options.maxTokens ?? 300, 20, 8192),
        bufferSize: integer('chunking.bufferSize', options.bufferSize ?? 0, 0, 1),
        breakpointPercentileThreshold: integer('chunking.breakpointPercentileThreshold', options.breakpointPercentileThreshold ?? 95, 50, 99),
      },
    });
  }

  /** Small child chunks are searched, their larger parent chunks are returned (more context per result). */
  public static hierarchical(options: HierarchicalChunkingOptions = {}): ChunkingStrategy {
    const parent = integer('chunking.maxParentTokens', options.maxParentTokens ?? 1500, 1, 8192);
    const child = integer('chunking.maxChildTokens', options.maxChildTokens ?? 300, 1, 8192);
    if (child > parent) throw new Error(`chunking.maxChildTokens: ${child} is larger than maxParentTokens (${parent})`);
    return new ChunkingStrategy({
      chunkingStrategy: 'HIERARCHICAL',
      hierarchicalChunkingConfiguration: {
        levelConfigurations: [{ maxTokens: parent }, { maxTokens: child }],
        overlapTokens: integer('chunking.overlapTokens', options.overlapTokens ?? 60, 1, 8192),
      },
    });
  }

  /** @param configuration the data sources' `ChunkingConfiguration` */
  private constructor(public readonly configuration: bedrock.CfnDataSource.ChunkingConfigurationProperty) {}
}

function integer(prop: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${prop}: expected an integer from ${min} to ${max}, got ${value}`);
  return value;
}
