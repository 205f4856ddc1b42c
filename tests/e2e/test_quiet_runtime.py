"""A quiet local runtime (the demo's) prints no metric lines, even when Powertools flushes on its own."""

from pathlib import Path

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

from consentry.observability import metrics
from consentry_local.runtime import LocalRuntime
from tests.conftest import START


def test_a_metric_holding_100_values_prints_nothing_while_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = LocalRuntime(tmp_path, start=START, quiet=True)
    runtime.start()
    try:
        for _ in range(150):  # Powertools prints the set at the 100th value, disabled or not
            metrics.add_metric(name="Receipts", unit=MetricUnit.Count, value=1)
    finally:
        runtime.stop()
    assert "_aws" not in capsys.readouterr().out
    assert "print" not in vars(cloudwatch)  # the shadow goes with the runtime
