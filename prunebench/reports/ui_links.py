"""Addresses in MLflow's UI (light: the CLI imports it).

Links have the UI's own form ``{ui}/#/experiments/{experiment_id}/runs/{run_id}``, plus the query
``workflowType=machine_learning``: MLflow 3.17's UI picks its pages by a workflow switch (top left,
"GenAI" / "Model training", remembered per browser, GenAI by default) that this URL parameter
sets; the experiment's kind tag (``record.EXPERIMENT_KIND_TAG``) alone does not.
"""

from __future__ import annotations

UI_TRAINING_VIEW = "?workflowType=machine_learning"
"""URL query that opens MLflow 3.17's UI on its model-training pages (runs table, run page)."""
DEFAULT_UI_URL = "http://127.0.0.1:5000"
"""Where `nox -s ui` serves MLflow's UI (the report's run links point there by default)."""


def experiment_url(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI's runs table of one experiment."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}{UI_TRAINING_VIEW}"


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of one run."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{UI_TRAINING_VIEW}"
