"""The input contract fails safe, on the German book and on another one: an unseen category, or a missing value
the model learned no bin for, never scores better than the feature's worst bin; text is normalised as training
decided; bundles of the first format still load and fail safe."""
from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from services.scoring.training import MODEL_FAMILIES, TrainResult
from services.scoring.training.bundle import bundle_bytes, load_bundle, score_rows
from services.scoring.training.dataset import load_dataset
from services.scoring.training.flows import build_model
from services.scoring.training.models import Scaling
from services.scoring.training.runtime import feeds_from_rows, make_session
from services.scoring.training.split import split_rows

from .conftest import synthetic_loans


def _rows_with(frame: pd.DataFrame, name: str, values: list) -> list[dict]:  # noqa: ANN001
    base = frame.drop(columns=["status"]).head(40)
    rows = base.astype(object).where(base.notna(), None).to_dict("records")
    return [{**row, name: value} for row in rows for value in values]


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    loans = synthetic_loans(n=1500).drop(columns="application_date")
    # channel never missing in training, employment sometimes (its missing bin is learned)
    return loans


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_unseen_or_unlearned_missing_scores_no_better_than_any_seen_value(book: pd.DataFrame, family: str) -> None:
    ds = load_dataset(book, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model(family, ds, parts, Scaling(), seed=0)
    session = make_session(model.onnx)
    spec = {s.name: s for s in model.schema}
    for name in model.features:
        if spec[name].kind == "categorical":
            seen = list(spec[name].categories)
            odd = ["crypto", None] if not spec[name].missing_learned else ["crypto"]
        elif not spec[name].missing_learned:
            seen = sorted(book[name].dropna().quantile([0, 0.25, 0.5, 0.75, 1.0]).tolist())
            odd = [None]
        else:
            continue
        rows = _rows_with(book, name, seen + odd)
        pd_ = session.run(["pd"], feeds_from_rows(model.schema, rows))[0].reshape(-1, len(seen) + len(odd))
        worst_seen = pd_[:, :len(seen)].mean(axis=0).max()
        # On average over applicants (the trees' worst value is chosen so), and for the scorecard row by row.
        assert pd_[:, len(seen):].mean(axis=0).min() >= worst_seen - 1e-6, (family, name)
        if family == "scorecard":
            assert (pd_[:, len(seen):].min(axis=1) >= pd_[:, :len(seen)].max(axis=1) - 1e-6).all(), name


def test_text_normalisation_is_decided_at_training_and_applied_when_scoring(book: pd.DataFrame) -> None:
    ds = load_dataset(book, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model("scorecard", ds, parts, Scaling(), seed=0)
    region = next(s for s in model.schema if s.name == "region")
    assert region.text == "strip_casefold"
    rows = _rows_with(book, "region", ["south", "South", " SOUTH ", "south\t"])
    pd_ = make_session(model.onnx).run(["pd"], feeds_from_rows(model.schema, rows))[0].reshape(-1, 4)
    assert (pd_ == pd_[:, :1]).all()
    # A book that tells "A" from "a" keeps them apart: case is not folded there.
    cased = book.assign(region=book["region"].where(book["region"] != "south", "North"))
    assert next(s for s in build_model("scorecard", load_dataset(cased, "status", good="repaid"), parts,
                                       Scaling(), seed=0).schema if s.name == "region").text == "strip"


def test_the_shipped_german_book_scores_odd_purposes_as_its_worst(german: TrainResult) -> None:
    """Found 1: "Education", "education ", null and "crypto" scored 11 points above "education"."""
    bundle = load_bundle(bundle_bytes(german))
    frame = pd.read_csv(io.StringIO(german_csv()))
    row = frame.drop(columns="creditability").iloc[3].to_dict()
    scores = {p: score_rows(bundle, [{**row, "purpose": p}])[0]["score"]
              for p in ["education", "Education", "education ", None, "crypto"]}
    assert scores["Education"] == scores["education "] == pytest.approx(scores["education"])
    purpose_bins = next(t for t in german.scorecard.bins if t["feature"] == "purpose")
    worst = min(purpose_bins["points"][:purpose_bins["missing_index"]])
    points = {p: score_rows(bundle, [{**row, "purpose": p}])[0]["points_per_feature"]["purpose"]
              for p in [None, "crypto"]}
    assert points[None] == pytest.approx(worst, abs=1e-3) and points["crypto"] == pytest.approx(worst, abs=1e-3)


def german_csv() -> str:
    from services.scoring.registry.flows import DEFAULT_DATA

    return DEFAULT_DATA.read_text()


def _as_format1(data: bytes) -> bytes:
    """The same models as a bundle written before the input contract: no text rule, fallback or missing flag."""
    src = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(src.read("manifest.json"))
    manifest["format"] = "loancrm-scoring-bundle/1"
    manifest.pop("input_contract")
    for meta in manifest["models"].values():
        for spec in meta["schema"]:
            for key in ("text", "missing_learned", "fallback"):
                spec.pop(key, None)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in src.namelist():
            zf.writestr(name, json.dumps(manifest) if name == "manifest.json" else src.read(name))
    return out.getvalue()


def test_a_bundle_of_the_first_format_still_loads_and_its_scorecard_fails_safe(german: TrainResult) -> None:
    bundle = load_bundle(_as_format1(bundle_bytes(german)))
    row = pd.read_csv(io.StringIO(german_csv())).drop(columns="creditability").iloc[3].to_dict()
    purpose = next(s for s in bundle.schema("scorecard") if s.name == "purpose")
    assert purpose.text == "exact" and purpose.fallback is not None
    odd = score_rows(bundle, [{**row, "purpose": "crypto"}])[0]["score"]
    seen = [score_rows(bundle, [{**row, "purpose": p}])[0]["score"] for p in purpose.categories]
    assert odd <= min(seen) + 1e-4
