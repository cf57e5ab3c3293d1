"""The report's one MLflow write: the written report logged as the artifacts of a report run."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from prunebench import __version__, mlflow_store, record
from prunebench.reports.model import ReportContent


def log_report_run(client: MlflowClient, content: ReportContent, directory: Path) -> str:
    """Log the written report as the artifacts of a new run (kind "report") in the experiment."""
    data = content.data
    run = client.create_run(
        data.experiment_id,
        run_name="report",
        tags=record.new_run_tags(record.KIND_REPORT),
    )
    run_id = run.info.run_id
    try:
        mlflow_store.log_values(
            client,
            run_id,
            params={
                "report.experiment": data.name,
                "report.cells": len(content.board),
                "report.training_runs": int((data.runs["kind"] == record.KIND_TRAIN).sum()),
                "report.problem_runs": len(content.parts["problems"]),
                "report.min_tolerance": f"{content.min_tolerance:g}",
                "report.level": f"{content.level:g}",
                record.PARAM_VERSION: __version__,
            },
        )
        client.log_artifacts(run_id, str(directory))
        mlflow_store.set_tags(client, run_id, record.end_tags("FINISHED"))
        client.set_terminated(run_id, "FINISHED")
    except Exception as error:
        mlflow_store.set_tags(
            client, run_id, record.end_tags("FAILED", f"logging the report failed: {error}")
        )
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id
