#!/usr/bin/env python3
"""The reference app in Python: the ONS data platform in dev, staging and prod, checked by cdk-nag.

    pip install ons-data-platform aws-cdk-lib constructs cdk-nag
    cdk synth --app "python3 app.py"
"""
import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from ons_data_platform import ApiTier, OnsDataPlatform, PlatformStage, TimeSeriesEngine


def build_reference_app(app: cdk.App) -> cdk.App:
    for stage in (PlatformStage.DEV, PlatformStage.STAGING, PlatformStage.PROD):
        stack = cdk.Stack(
            app,
            f"OnsDataPlatform-{stage.name}",
            env=cdk.Environment(
                account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                region=os.environ.get("CDK_DEFAULT_REGION", "us-east-1"),
            ),
            description=f"ONS data platform ({stage.name})",
        )
        # The lake engine (the default, written out here): Athena over the processed Parquet, no loader, no idle cost.
        platform = OnsDataPlatform(
            stack, "Platform", stage=stage, time_series=TimeSeriesEngine.lake(), tags={"CostCenter": "energy-data"}
        )
        # API Gateway generates the key's value: read it with `aws apigateway get-api-key --include-value`.
        key = platform.api.add_api_key("DashboardKey", tier=ApiTier.BASIC)
        cdk.CfnOutput(stack, "ApiUrl", value=platform.api.url)
        cdk.CfnOutput(stack, "DashboardApiKeyId", value=key.key_id)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_reference_app(cdk.App()).synth()
