"""`loancrm study relationship`: the extract over HTTP as a signed-in risk analyst, the fit, the report files."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from shared.clients.customer import CustomerClient
from shared.clients.identity import CallerToken, Credentials, UserSession
from shared.clients.monitoring import MonitoringClient
from shared.settings import BatchSettings, KernelSettings, load_settings


def _window(text: str) -> int:
    found = re.fullmatch(r"(\d{1,2})m?", text.strip())
    if not found or not 1 <= int(found.group(1)) <= 60:
        raise argparse.ArgumentTypeError("a number of months from 1 to 60, e.g. 12m")
    return int(found.group(1))


def add_study_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--as-of", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="observation date: every measure is taken as of it, the outcome window follows it")
    parser.add_argument("--window", type=_window, default=12, metavar="12m", help="outcome window in months")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write report.json, chart.png and the extract (extract.csv) there")
    parser.add_argument("--user", metavar="NAME", help="sign in as this risk analyst (asked for the password); "
                                                       "the session renews itself for as long as the extract runs")
    return parser


def run_study_cli(args: argparse.Namespace) -> dict[str, Any]:
    """Raises Problem (a peer down, too few defaults, separation) for the caller to print."""
    from services.scoring.study import flows, service
    from services.scoring.study.charts import study_chart
    from shared.errors import Problem

    kernel = load_settings(KernelSettings)
    token = load_settings(BatchSettings).api_token
    password = getpass.getpass(f"Password for {args.user}: ") if args.user else None
    if password is None and not token:
        raise Problem(401, "Not signed in", "Give --user NAME (a risk analyst; you are asked for the password): the "
                                            "study reads monitoring and the customer service over HTTP as that "
                                            "user. (LOANCRM_API_TOKEN, a token of theirs, also works while it lasts.)")

    async def extract() -> flows.Extract:
        # aiohttp sessions belong to one event loop, so the clients are made inside this one.
        timeout = max(kernel.peer_timeout_seconds, 30.0)
        customer = CustomerClient(kernel.urls("customer"), timeout=timeout)
        monitoring = MonitoringClient(kernel, timeout=timeout)
        credentials: Credentials = CallerToken(token or "") if password is None else UserSession(
            kernel.url("gateway"), args.user, password, timeout=timeout)
        try:
            return await flows.extract(customer, monitoring, as_of=args.as_of, window_months=args.window,
                                       credentials=credentials)
        finally:
            await credentials.aclose()
            await customer.aclose()
            await monitoring.aclose()

    found = asyncio.run(extract())
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        found.table.to_csv(args.out / "extract.csv", index=False)
    report = service.run_study(found.table, as_of=args.as_of, window_months=args.window, extract=found.counts)
    if args.out is not None:
        (args.out / "report.json").write_text(json.dumps(report, indent=2))
        (args.out / "chart.png").write_bytes(study_chart(report))
    return report
