"""Reads an MLflow tracking store with the real MLflow client and writes what it sees as JSON.

Usage: python read_with_mlflow.py <tracking_uri> <download_dir> <output_json> <experiment_name>...

The test that runs this compares the JSON with what Interleave wrote, so everything here goes
through MLflow's public client API (MlflowClient), never through the store's files directly.
"""

import base64
import json
import math
import os
import sys

import mlflow
from mlflow.tracking import MlflowClient


def encode_float(value):
    # JSON has no NaN or Infinity; Python's repr ('nan', 'inf', '-inf') stands in for them.
    return value if math.isfinite(value) else repr(value)


def list_artifacts_recursively(client, run_id, path=None):
    found = []
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            found.extend(list_artifacts_recursively(client, run_id, entry.path))
        else:
            found.append({"path": entry.path, "file_size": entry.file_size})
    return found


def describe_run(client, run_id, download_dir):
    run = client.get_run(run_id)
    info = run.info
    metrics = {}
    for key in sorted(run.data.metrics):
        history = client.get_metric_history(run_id, key)
        metrics[key] = [
            {"value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp} for m in history
        ]
    artifacts = list_artifacts_recursively(client, run_id)
    local_root = client.download_artifacts(run_id, "", os.path.join(download_dir, run_id))
    for artifact in artifacts:
        with open(os.path.join(local_root, artifact["path"]), "rb") as downloaded:
            artifact["content_base64"] = base64.b64encode(downloaded.read()).decode("ascii")
    return {
        "info": {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "user_id": info.user_id,
            "lifecycle_stage": info.lifecycle_stage,
            "artifact_uri": info.artifact_uri,
        },
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "latest_metrics": {key: encode_float(value) for key, value in run.data.metrics.items()},
        "metrics": metrics,
        "artifacts": sorted(artifacts, key=lambda artifact: artifact["path"]),
    }


def describe_experiment(client, name, download_dir):
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise SystemExit(f"MLflow found no experiment named {name!r}")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "runs": [describe_run(client, run.info.run_id, download_dir) for run in runs],
    }


def main():
    tracking_uri, download_dir, output_path, *experiment_names = sys.argv[1:]
    client = MlflowClient(tracking_uri=tracking_uri)
    result = {
        "mlflow_version": mlflow.__version__,
        "experiment_names": sorted(e.name for e in client.search_experiments()),
        "experiments": {name: describe_experiment(client, name, download_dir) for name in experiment_names},
    }
    with open(output_path, "w", encoding="utf-8") as output:
        json.dump(result, output, indent=2, sort_keys=True, allow_nan=False)


if __name__ == "__main__":
    main()
