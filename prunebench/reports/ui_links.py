"""Addresses in MLflow's UI, and store URLs as people may read them (light: the CLI imports it).

Links have the UI's own form ``{ui}/#/experiments/{experiment_id}/runs/{run_id}``, plus the query
``workflowType=machine_learning``: MLflow 3.17's UI picks its pages by a workflow switch (top left,
"GenAI" / "Model training", remembered per browser, GenAI by default) that this URL parameter
sets; the experiment's kind tag (``record.EXPERIMENT_KIND_TAG``) alone does not.
"""

from __future__ import annotations

import urllib.parse

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


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (for people to read).

    The report's own stand-in until ``prunebench.stores.redact_url`` (branch ``rel``) lands on
    main; then this function goes and its callers import that one.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
