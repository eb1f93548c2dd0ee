"""`loancrm scoring train` and `loancrm scoring psi`: argument wiring and handlers (the lead mounts them)."""

from __future__ import annotations

import argparse
from typing import Any

from services.scoring.training.cli import add_train_arguments
from services.scoring.settings import MAX_PSI_WINDOW
from shared.settings import KernelSettings, load_settings

# The handlers import the registry and scoring stack only when run: `loancrm` builds this parser for every
# command, and `loancrm serve gateway` should not pay a second for loading the model registry.


def add_scoring_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_train_arguments(parser)
    parser.add_argument("--no-register", action="store_true", help="train only; do not add drafts to the registry")
    parser.add_argument("--name", default="german-credit", help="model name in the registry")
    parser.add_argument("--note", default=None, help="why this model was trained (kept in its history)")
    parser.add_argument("--actor", default="cli", help="who registers it (kept in its history)")
    return parser


def run_scoring_train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, write the report, and (unless --no-register) register the models as drafts for review."""
    from services.scoring.registry.flows import artifact_store, reference_rows, register_trained
    from services.scoring.training.cli import train_from_args, write_report
    from shared.db import Database

    result = train_from_args(args)
    report = write_report(args, result)
    if args.no_register:
        return report
    kernel = load_settings(KernelSettings)
    database = Database(kernel.database_url("scoring"))
    try:
        models = register_trained(database, artifact_store(kernel), result, name=args.name, actor=args.actor,
                                  note=args.note, reference=reference_rows(args.data, args.target))
    finally:
        database.dispose()
    report["registered"] = [{"id": m.id, "version": m.label, "role": m.role, "state": m.state} for m in models]
    return report


def _window(text: str) -> int:
    value = int(text)
    if not 10 <= value <= MAX_PSI_WINDOW:
        raise argparse.ArgumentTypeError(f"must be from 10 to {MAX_PSI_WINDOW:,}")
    return value


def add_psi_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model-id", default=None, help="a registry model id (default: the champion)")
    parser.add_argument("--window", type=_window, default=None,
                        help=f"how many recent scores to compare (10 to {MAX_PSI_WINDOW:,})")
    return parser


def run_psi(args: argparse.Namespace) -> dict[str, Any]:
    """The PSI report (bands 0.1 / 0.25) of a model, read straight from the scoring database."""
    from services.scoring.hashing import load_hash_key
    from services.scoring.registry.flows import artifact_store
    from services.scoring.scores.service import ScoringContext
    from services.scoring.settings import ScoringSettings
    from services.scoring.stability.flows import report_for
    from shared.db import Database

    kernel = load_settings(KernelSettings)
    settings = load_settings(ScoringSettings)
    database = Database(kernel.database_url("scoring"))
    try:
        context = ScoringContext(settings, load_hash_key(settings, kernel))
        return report_for(database, artifact_store(kernel), context, args.model_id, args.window)
    finally:
        database.dispose()
