"""``loancrm scoring train``: argument wiring and the run itself (the lead mounts it on the console command)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from .models import TrainResult


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--data", default=None, help="training CSV")
    parser.add_argument("--target", default=None, help="target column (bad = 1 unless --good is given)")
    parser.add_argument("--extract", default=None, metavar="EXTRACT.csv",
                        help="train on the relationship study's point-in-time extract (`loancrm study relationship "
                             "--out DIR` writes DIR/extract.csv) instead of --data: target default_in_window, ids "
                             "and dates left out, the study's relationship measures checked for AUC lift")
    parser.add_argument("--good", default=None, help="value of the target that means 'good'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--date-column", default=None, help="split out-of-time on this column (newest = test)")
    parser.add_argument("--relationship-features", default="", help="comma-separated columns for the AUC-lift check")
    parser.add_argument("--exclude", default="", help="comma-separated columns that are not features (ids, keys)")
    parser.add_argument("--categorical", default="", help="comma-separated numeric columns that code categories "
                                                          "(e.g. EDUCATION 1-6), binned as categories")
    parser.add_argument("--challenger", default="lightgbm", choices=["lightgbm", "sklearn_gbm"])
    parser.add_argument("--tuning-seconds", type=float, default=20.0,
                        help="time budget of the challenger's hyperparameter search on the validation split")
    parser.add_argument("--base-points", type=float, default=600.0)
    parser.add_argument("--base-odds", type=float, default=50.0)
    parser.add_argument("--pdo", type=float, default=20.0)
    parser.add_argument("--special-values", action="append", default=[], metavar="FEATURE=V1,V2",
                        help="values of FEATURE that code 'no data' or another special case (e.g. -1, 999): the "
                             "scorecard gives them a bin of their own; repeat for more features")
    parser.add_argument("--report", default=None, help="write the JSON report here")
    parser.add_argument("--out", default=None, help="directory for ONNX files, bundle, card and plots")
    return parser


def parse_special_values(given: list[str]) -> dict[str, list[str]]:
    """["months_since_default=-1,999", ...] -> {"months_since_default": ["-1", "999"]}."""
    out: dict[str, list[str]] = {}
    for item in given:
        name, sep, values = item.partition("=")
        codes = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not codes:
            raise SystemExit(f"--special-values wants FEATURE=V1,V2, not {item!r}")
        out.setdefault(name.strip(), []).extend(codes)
    return out


def _columns(given: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in given.split(",") if f.strip())


# What the study's extract holds besides features: ids, the observation date and the outcome (default_on is dated
# after as_of, so it must never be a feature).
EXTRACT_NOT_FEATURES = ("loan_id", "customer_id", "as_of", "window_months", "default_on", "disbursement_date",
                        "since", "branch")
EXTRACT_RELATIONSHIP = ("contacts_relationship", "csat_mean", "information_sharing", "loyalty_index")


def use_extract(args: argparse.Namespace) -> None:
    """Point the run at the study's extract: its target, its non-features, its relationship measures."""
    if getattr(args, "extract", None) is None:
        if not args.data or not args.target:
            raise SystemExit("cannot train: give --data and --target, or --extract")
        return
    if args.data:
        raise SystemExit("cannot train: give --data or --extract, not both")
    import pandas as pd

    columns = set(pd.read_csv(args.extract, nrows=0).columns)
    if "default_in_window" not in columns:
        raise SystemExit(f"cannot train: {args.extract} has no default_in_window column: not a study extract")
    args.data, args.target, args.good = args.extract, args.target or "default_in_window", None
    given = _columns(args.exclude)
    args.exclude = ",".join([*given, *(c for c in EXTRACT_NOT_FEATURES if c in columns and c not in given)])
    if not args.relationship_features:
        args.relationship_features = ",".join(c for c in EXTRACT_RELATIONSHIP if c in columns)


def train_from_args(args: argparse.Namespace) -> TrainResult:
    """Train with a progress bar on stderr; unusable data ends the command with one line that says why."""
    from .flows import TrainConfig, TrainingFlow
    from .models import DataError, Scaling

    use_extract(args)
    config = TrainConfig(
        target=args.target,
        good=args.good,
        seed=args.seed,
        date_column=args.date_column,
        scaling=Scaling(args.base_points, args.base_odds, args.pdo),
        relationship_features=_columns(args.relationship_features),
        exclude=_columns(args.exclude),
        categorical=_columns(args.categorical),
        challenger=args.challenger,
        out_dir=args.out,
        special_values=parse_special_values(getattr(args, "special_values", None) or []),
        tuning_seconds=getattr(args, "tuning_seconds", 20.0),
    )
    flow = TrainingFlow(args.data, config)
    with tqdm(total=len(flow.steps), desc="training", unit="step", file=sys.stderr) as bar:

        def advance(step: str) -> None:
            bar.set_postfix_str(f"{step} done")
            bar.update(1)

        try:
            return flow.run(advance)
        except DataError as exc:
            raise SystemExit(f"cannot train: {exc}") from None


def write_report(args: argparse.Namespace, result: TrainResult) -> dict[str, Any]:
    report = result.report()
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    return report


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    """Train; returns (and optionally writes) the report."""
    return write_report(args, train_from_args(args))


def main(argv: list[str] | None = None) -> int:
    parser = add_train_arguments(argparse.ArgumentParser(prog="loancrm scoring train", description=__doc__))
    report = run_train(parser.parse_args(argv))
    summary = {role: {k: report[role][k] for k in ("test_auc", "test_ks")} for role in ("scorecard", "challenger")}
    print(json.dumps({**summary, "parity_max_abs_diff": report["parity_max_abs_diff"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
