"""The report's one MLflow write: the written report logged as the artifacts of a report run."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Param

from prunebench import __version__, record
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
        client.log_batch(
            run_id,
            params=[
                Param("report.experiment", data.name),
                Param("report.cells", str(len(content.board))),
                Param(
                    "report.training_runs", str(int((data.runs["kind"] == record.KIND_TRAIN).sum()))
                ),
                Param("report.problem_runs", str(len(content.parts["problems"]))),
                Param("report.min_tolerance", f"{content.min_tolerance:g}"),
                Param("report.level", f"{content.level:g}"),
                Param(record.PARAM_VERSION, __version__),
            ],
        )
        client.log_artifacts(run_id, str(directory))
        record.set_tags(client, run_id, record.end_tags("FINISHED"))
        client.set_terminated(run_id, "FINISHED")
    except Exception as error:
        record.set_tags(
            client, run_id, record.end_tags("FAILED", f"logging the report failed: {error}")
        )
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id
