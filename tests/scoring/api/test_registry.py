"""The model registry: the default champion, transitions and who may make them, rollback, hot-loading, and
`loancrm scoring train` registering drafts unless --no-register."""

import argparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from services.scoring.cli import add_scoring_train_arguments, run_scoring_train
from services.scoring.main import create_app
from services.scoring.registry.flows import artifact_store, ensure_default_champion, register_trained
from services.scoring.registry.models import ModelArtifact, ModelVersion
from services.scoring.registry.store import ArtifactCorrupt
from services.scoring.settings import ScoringSettings
from services.scoring.training.bundle import bundle_bytes
from tests.scoring.api.conftest import GERMAN, install


@pytest.fixture(scope="module")
def default_champion(suite):  # noqa: ANN001, ANN201
    """A fresh install: no model until `ensure_default_champion` trains the shipped data."""
    assert suite.direct["scoring"].post("/scores", json={"features": {"x": 1}},
                                        headers=suite.headers("admin")).status_code == 503
    installed = ensure_default_champion(suite.kernel)
    suite.services["scoring"].state.scoring.serving.invalidate()
    return installed


@pytest.fixture(scope="module")
def analyst(suite):  # noqa: ANN001, ANN201
    return suite.headers("analyst.reg", ["risk_analyst"])


def _models(suite, headers, **params):  # noqa: ANN001, ANN202
    response = suite.direct["scoring"].get("/models", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _act(suite, headers, path, body):  # noqa: ANN001, ANN202
    return suite.direct["scoring"].post(path, json=body, headers=headers)


def test_a_fresh_install_trains_and_promotes_a_default_champion_once(suite, default_champion, analyst, applicants):
    assert default_champion is not None and default_champion.role == "scorecard"
    assert ensure_default_champion(suite.kernel) is None
    states = {m["role"]: m["state"] for m in _models(suite, analyst)}
    assert states == {"scorecard": "champion", "challenger": "challenger"}
    current = suite.direct["scoring"].get("/models/champion/current", headers=analyst).json()
    assert current["id"] == default_champion.id
    assert [t["to_state"] for t in current["transitions"]] == ["draft", "validated", "champion"]
    assert current["metrics"]["test_auc"] > 0.7 and current["features"][0]["kind"] in {"numeric", "categorical"}
    assert (suite.kernel.var_dir / "models" / f"{current['artifact_sha256']}.zip").exists()
    scored = suite.direct["scoring"].post("/scores", json={"features": applicants[0]}, headers=analyst)
    assert scored.status_code == 201 and scored.json()["model_version"] == current["version_label"]


def test_transitions_need_a_risk_analyst_and_a_reason_and_keep_one_champion(suite, default_champion, analyst,
                                                                            trained, applicants):
    drafts = register_trained(suite.database("scoring"), artifact_store(suite.kernel), trained, name="german-credit",
                              actor="analyst.reg", note="retrained")
    scorecard = next(m for m in drafts if m.role == "scorecard")
    officer = suite.headers("officer.reg", ["loan_officer"], branch="BJ001")
    path = f"/models/{scorecard.id}"
    assert _act(suite, officer, f"{path}/validation", {"reason": "looks fine"}).status_code == 403
    assert _act(suite, analyst, f"{path}/promotion", {"target": "champion", "reason": "too early"}).status_code == 409
    assert _act(suite, analyst, f"{path}/validation", {"reason": "ok"}).status_code == 422  # reason too short
    validated = _act(suite, analyst, f"{path}/validation", {"reason": "AUC and parity checked"})
    assert validated.status_code == 200 and validated.json()["state"] == "validated"
    assert _act(suite, analyst, f"{path}/promotion", {"target": "champion"}).status_code == 422
    promoted = _act(suite, analyst, f"{path}/promotion", {"target": "champion", "reason": "retrained on new data"})
    assert promoted.status_code == 200, promoted.text
    last = promoted.json()["transitions"][-1]
    assert last["actor"] == "analyst.reg" and last["reason"] == "retrained on new data"
    assert last["replaced_model_id"] == default_champion.id
    champions = _models(suite, analyst, state="champion")
    assert [m["id"] for m in champions] == [scorecard.id]
    assert suite.direct["scoring"].get(f"/models/{default_champion.id}", headers=analyst).json()["state"] == "retired"
    # This process serves the new champion at once.
    scored = suite.direct["scoring"].post("/scores", json={"features": applicants[0]}, headers=analyst).json()
    assert scored["model_version"] == promoted.json()["version_label"]
    assert _act(suite, analyst, f"{path}/retirement", {"reason": "no longer wanted"}).status_code == 409

    rolled = _act(suite, analyst, "/models/champion/rollback", {"reason": "complaints about the new one"})
    assert rolled.status_code == 200 and rolled.json()["id"] == default_champion.id
    assert rolled.json()["state"] == "champion"
    assert suite.direct["scoring"].get(path, headers=analyst).json()["state"] == "retired"
    again = _act(suite, analyst, "/models/champion/rollback", {"reason": "once more"})
    assert again.status_code == 409


def test_the_database_refuses_a_second_champion(suite, default_champion):
    with suite.database("scoring").session() as session:
        other = session.exec(select(ModelVersion).where(ModelVersion.id != default_champion.id)).first()
        other.state = "champion"
        session.add(other)
        with pytest.raises(IntegrityError):
            session.commit()


def test_another_process_picks_up_a_promotion_without_restart(suite, default_champion, analyst, trained, applicants):
    second = create_app(suite.kernel, verifier=suite.services["scoring"].state.verifier,
                        settings=ScoringSettings(champion_refresh_seconds=0))
    with TestClient(second, base_url="http://scoring") as client:
        before = client.post("/scores", json={"features": applicants[5]}, headers=analyst).json()["model_version"]
        installed = install(suite, trained, note="promoted elsewhere")
        after = client.post("/scores", json={"features": applicants[5]}, headers=analyst).json()["model_version"]
    assert before != after == next(m for m in installed if m.role == "scorecard").label


def test_a_corrupt_artifact_cache_is_replaced_from_the_database_and_a_corrupt_row_refused(suite, default_champion):
    store = artifact_store(suite.kernel)
    sha = default_champion.artifact_sha256
    path = suite.kernel.var_dir / "models" / f"{sha}.zip"
    path.write_bytes(b"garbage")
    with suite.database("scoring").session() as session:
        assert len(store.load(session, sha)) > 1000
        assert path.read_bytes() != b"garbage"
        path.unlink()
        session.get(ModelArtifact, sha).data = b"tampered"
        with pytest.raises(ArtifactCorrupt):
            store.load(session, sha)
        session.rollback()


def test_a_bundle_file_is_uploaded_as_drafts(suite, default_champion, analyst, trained):
    data = bundle_bytes(trained)
    client = suite.direct["scoring"]
    headers = {**analyst, "Content-Type": "application/zip", "Idempotency-Key": "upload-1"}
    uploaded = client.post("/models", params={"name": "uploaded", "note": "from a zip"}, content=data,
                           headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    assert [(m["version_label"], m["state"]) for m in uploaded.json()] == [("uploaded-v1", "draft"),
                                                                         ("uploaded-v2", "draft")]
    again = client.post("/models", params={"name": "uploaded", "note": "from a zip"}, content=data, headers=headers)
    assert again.json() == uploaded.json()
    garbage = client.post("/models", params={"name": "uploaded"}, content=b"not a zip", headers=analyst)
    assert garbage.status_code == 422
    officer = suite.headers("officer.upload", ["loan_officer"], branch="BJ001")
    assert client.post("/models", params={"name": "x"}, content=data, headers=officer).status_code == 403


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_an_upload_is_limited_by_what_it_unpacks_to(suite, analyst):
    """Found 13: a 0.31 MB upload inflated the scoring process by 500 MB; the cap counted compressed bytes."""
    import json
    import os

    bomb = _zip({"manifest.json": json.dumps({"format": "loancrm-scoring-bundle/1", "models": {
        "scorecard": {"path": "scorecard.onnx", "onnx_sha256": "0" * 64}}}).encode(),
        "scorecard.onnx": bytes(40 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    headers = {**analyst, "Content-Type": "application/zip"}
    refused = suite.direct["scoring"].post("/models", params={"name": "bomb"}, content=bomb, headers=headers)
    assert refused.status_code == 413, refused.text
    assert refused.headers["content-type"] == "application/problem+json" and "unpacks" in refused.json()["detail"]
    # The route's own body limit is above the kernel's 1 MB default: a 2 MB zip is read (and refused as no bundle).
    large = _zip({"noise.bin": os.urandom(2 * 1024 * 1024)})
    assert suite.direct["scoring"].post("/models", params={"name": "noise"}, content=large,
                                        headers=headers).status_code == 422


def test_auditors_read_the_registry_but_cannot_change_it(suite, default_champion):
    auditor = suite.headers("auditor.reg", ["auditor"])
    assert _models(suite, auditor)
    card = suite.direct["scoring"].get(f"/models/{default_champion.id}/card", headers=auditor)
    assert card.status_code == 200 and card.json()
    assert _act(suite, auditor, "/models/champion/rollback", {"reason": "not mine to do"}).status_code == 403


def _args(*extra: str) -> argparse.Namespace:
    parser = add_scoring_train_arguments(argparse.ArgumentParser())
    return parser.parse_args(["--data", str(GERMAN), "--target", "creditability", "--good", "good", *extra])


def test_training_registers_drafts_for_review(suite, monkeypatch, tmp_path):
    monkeypatch.setenv("LOANCRM_VAR_DIR", str(suite.kernel.var_dir))
    monkeypatch.setenv("LOANCRM_SCORING_DATABASE_URL", suite.kernel.database_url("scoring"))
    report = run_scoring_train(_args("--note", "quarterly retrain", "--report", str(tmp_path / "r.json")))
    assert (tmp_path / "r.json").exists() and report["scorecard"]["test_auc"] > 0.7
    assert [(m["role"], m["state"]) for m in report["registered"]] == [("scorecard", "draft"), ("challenger", "draft")]
    models = suite.direct["scoring"].get("/models", params={"state": "draft"},
                                         headers=suite.headers("admin")).json()["items"]
    assert {m["id"] for m in models} >= {m["id"] for m in report["registered"]}


def test_no_register_only_trains(monkeypatch, tmp_path):
    monkeypatch.setenv("LOANCRM_SCORING_DATABASE_URL", f"sqlite:///{tmp_path / 'never-created.db'}")
    report = run_scoring_train(_args("--no-register"))
    assert "registered" not in report and not (tmp_path / "never-created.db").exists()
