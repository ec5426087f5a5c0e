import * as iam from 'aws-cdk-lib/aws-iam';

/**
 * How the platform's health check (`GET /health`) reaches a component with read-only calls: the configuration
 * its probe reads, and the permissions those calls need. A construct offers its own (`healthProbe()`), so the
 * health function knows no engine; `OnsDataPlatform` hands it to its health function.
 */
export interface IHealthProbe {
  /**
   * The JSON object the probe reads (values may be tokens). For a time-series store, `engine` names the probe
   * (`timestream-liveanalytics`, `timestream-influxdb`) and the other fields are its parameters.
   */
  readonly config: { [key: string]: string };

  /** Lets `grantee` (the health function) make the probe's calls. */
  grant(grantee: iam.IGrantable): void;
}
