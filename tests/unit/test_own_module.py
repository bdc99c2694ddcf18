"""A user's own plant from a labelled CSV: `modules add`, `train`, then the API serving the new module."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.cli.app import app
from plantwatch.settings import Settings, get_settings
from tests.own_plant import valve_readings, write_valve_csv

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PLANTWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("PLANTWATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PLANTWATCH_MODULES_DIR", str(tmp_path / "modules"))
    monkeypatch.setenv("PLANTWATCH_DATASETS_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("PLANTWATCH_CHATBOT_EMBEDDINGS", "false")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_add_list_show_and_refuse_a_name_that_exists(settings: Settings, tmp_path: Path) -> None:
    csv = write_valve_csv(tmp_path / "valve_run.csv", valve_readings(rows=300))
    output = _invoke("modules", "add", "valve", "--from", str(csv), "--ignore-columns", "Operator")
    written = settings.modules_dir / "valve.yaml"
    assert str(written) in output.replace("\n", "") and written.is_file()
    assert "Status (ALARM=1.0, OK=0.0)" in output and "semicolon" in output
    again = runner.invoke(
        app, ["modules", "add", "valve", "--from", str(csv), "--ignore-columns", "Operator"]
    )
    assert again.exit_code == 1 and "exists" in again.output
    builtin = runner.invoke(app, ["modules", "add", "energy", "--from", str(csv)])
    assert builtin.exit_code == 1 and "exists" in builtin.output
    assert "valve" in _invoke("modules", "list") and "process" in _invoke("modules", "list")
    shown = _invoke("modules", "show", "valve")
    assert "Zeit (%d.%m.%Y %H:%M:%S)" in shown and "l/min" in shown
    unknown = runner.invoke(app, ["modules", "show", "kiln"])
    assert unknown.exit_code == 1 and "unknown module 'kiln'" in unknown.output


def test_a_broken_user_configuration_stops_every_command_naming_file_and_field(settings: Settings) -> None:
    settings.modules_dir.mkdir(parents=True)
    (settings.modules_dir / "kiln.yaml").write_text("name: kiln\nfeatures: []\ntimestamp: {column: t}\n")
    result = runner.invoke(app, ["modules", "list"])
    assert result.exit_code == 2
    assert "kiln.yaml, field layouts[0].features" in result.output.replace("\n", "")


def test_train_warns_on_noise_but_not_on_a_real_process(settings: Settings, tmp_path: Path) -> None:
    csv = write_valve_csv(tmp_path / "valve_run.csv", valve_readings(rows=900))
    _invoke("modules", "add", "valve", "--from", str(csv), "--ignore-columns", "Operator")
    trained = _invoke("train", "valve", "--data", str(csv))
    assert "Trained valve/pca v0001" in trained and "looks like noise" not in trained

    rng = np.random.default_rng(4)
    noise = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=900, freq="1min")})
    for name in ("a", "b", "c", "d"):
        noise[name] = rng.uniform(size=900).round(4)
    noise.to_csv(tmp_path / "noise.csv", index=False)
    _invoke("modules", "add", "noise", "--from", str(tmp_path / "noise.csv"))
    warned = _invoke("train", "noise", "--data", str(tmp_path / "noise.csv"))
    assert "the training data looks like noise" in warned.replace("\n", " ")


def test_the_api_serves_the_new_module(settings: Settings, tmp_path: Path) -> None:
    readings = valve_readings(rows=1200)
    training = write_valve_csv(tmp_path / "valve_run.csv", readings.iloc[:800])
    _invoke("modules", "add", "valve", "--from", str(training), "--ignore-columns", "Operator")
    _invoke("train", "valve", "--data", str(training))

    unseen = readings.iloc[800:]
    body = {
        "source": "line-1",
        "readings": [
            {
                "timestamp": row.timestamp.isoformat(),
                "values": {
                    "valve_position": row.position,
                    "flow": row.flow,
                    "pressure": row.pressure,
                    "pump": 1.0 if row.pump == "on" else 0.0,
                    "mode": 0.0 if row.mode == "auto" else 1.0,
                },
            }
            for row in unseen.itertuples()
        ],
    }
    with TestClient(create_app(settings)) as client:
        modules = {m["name"]: m for m in client.get("/modules").json()["modules"]}
        assert list(modules) == ["energy", "machine", "cyber", "process", "valve"]
        valve = modules["valve"]
        assert valve["model"]["name"] == "pca" and valve["model"]["version"] == "v0001"
        assert [f["name"] for f in valve["features"]][:2] == ["valve_position", "flow"]
        assert next(f for f in valve["features"] if f["name"] == "flow")["unit"] == "l/min"
        enum = next(
            p for p in client.get("/openapi.json").json()["paths"]["/ingest/{module}"]["post"]["parameters"]
        )["schema"]["enum"]
        assert "valve" in enum

        response = client.post("/ingest/valve", json=body)
        assert response.status_code == 200, response.text
        stored = client.get("/anomalies/valve", params={"limit": 500}).json()["items"]
        assert stored and all(item["module"] == "valve" for item in stored)
        # the faults (flow collapses with the valve open) are what is flagged
        faulty = set(unseen.loc[unseen["fault"] == 1, "timestamp"].map(pd.Timestamp.isoformat))
        flagged = {item["window_end"] for item in stored}
        assert len(flagged & faulty) / len(flagged) > 0.5
        assert client.get("/scores/valve").json()["threshold"] is not None
        assert client.get("/health").json()["status"] == "degraded"  # the seed modules have no model here
        incidents = client.get("/incidents", params={"module": "valve"})
        assert incidents.status_code == 200 and incidents.json()["items"]
        answer = client.post("/chatbot/query", json={"question": "how many anomalies in the valve module?"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["cited_anomaly_ids"] and "valve" in answer.json()["answer"]

        wrong = {**body, "readings": [{**body["readings"][0], "values": {"flow": 1.0}}]}
        refused = client.post("/ingest/valve", json=wrong)
        assert refused.status_code == 422 and refused.json()["field"] == "readings[0].values.valve_position"
        bad_code = dict(body["readings"][0]["values"], pump=5.0)
        refused = client.post(
            "/ingest/valve",
            json={"source": "line-2", "readings": [{**body["readings"][0], "values": bad_code}]},
        )
        assert refused.status_code == 422 and refused.json()["field"] == "values.pump"

    # a configuration that changed under a trained model takes it out of service, naming the columns
    config = settings.modules_dir / "valve.yaml"
    config.write_text(config.read_text().replace("unit: l/min", "unit: m3/h"))
    with TestClient(create_app(settings)) as client:
        valve = next(m for m in client.get("/modules").json()["modules"] if m["name"] == "valve")
        assert valve["model"] is None and "['flow'] changed" in valve["problem"]
        unavailable = client.post("/ingest/valve", json=body)
        assert unavailable.status_code == 503 and "flow" in unavailable.json()["detail"]


def test_evaluate_reads_the_files_as_the_module_lays_them_out(settings: Settings, tmp_path: Path) -> None:
    readings = valve_readings(rows=1200, fault_from=0.6)
    train = write_valve_csv(tmp_path / "train.csv", readings.iloc[:600])
    test = write_valve_csv(tmp_path / "test.csv", readings.iloc[600:])
    _invoke("modules", "add", "valve", "--from", str(train), "--ignore-columns", "Operator")
    out = tmp_path / "metrics.json"
    printed = _invoke(
        "evaluate",
        "--module",
        "valve",
        "--train",
        str(train),
        "--test",
        str(test),
        "--models",
        "pca",
        "--json",
        str(out),
    )
    assert "train.csv -> test.csv" in printed
    metrics = __import__("json").loads(out.read_text())["models"]["pca"]
    assert metrics["events"] == 4 and metrics["roc_auc"] > 0.8  # the faults, read from Status, rank high
    unknown = runner.invoke(app, ["evaluate", "--module", "kiln", "--train", str(train), "--test", str(test)])
    assert unknown.exit_code == 2 and "unknown module 'kiln'" in unknown.output
