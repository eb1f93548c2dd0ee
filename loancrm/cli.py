"""`loancrm`: the operator's command line (start the suite, migrate, manage users and clients, train models)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import date
from pathlib import Path

import httpx

from gateway.settings import GatewaySettings
from gateway.users.models import UserCreate
from shared.auth.roles import Role
from shared.pagination import every_item
from shared.settings import SERVICES, BatchSettings, KernelSettings, SettingsError, load_settings


def _check_service_settings() -> None:
    """Read every service's own settings now, so a bad value stops start-up with one line, not a traceback."""
    from services.customer.settings import CustomerSettings
    from services.monitoring.settings import CobQueueSettings, MonitoringSettings
    from services.scoring.settings import ScoringSettings

    for cls in (CustomerSettings, ScoringSettings, MonitoringSettings, CobQueueSettings, BatchSettings):
        load_settings(cls)


def _up(args: argparse.Namespace) -> int:
    from loancrm import bootstrap, migrate, supervisor
    from shared.files import secure_var_dir

    _check_service_settings()
    kernel = load_settings(KernelSettings)
    gateway = load_settings(GatewaySettings)
    admin = load_settings(bootstrap.AdminSettings)
    secure_var_dir(kernel.var_dir)
    migrate.upgrade_all(kernel)
    generated = bootstrap.bootstrap_gateway(kernel, gateway, admin)
    _ensure_champion(kernel)
    if generated:
        print(f"Created admin user {admin.user!r} with one-time password: {generated}\n"
              "Store it now; it is not shown again. Set LOANCRM_ADMIN_PASSWORD to choose your own.", flush=True)
    if args.no_demo:
        return supervisor.run_all(kernel)

    def seed_demo() -> None:
        from loancrm.demo import DemoError, seed_once

        try:
            seed_once(kernel.url("gateway"), kernel.var_dir,
                      lambda: bootstrap.operator_token(kernel, gateway, admin.user),
                      out=lambda line: print(line, flush=True))  # a pipe (a process manager) sees it at once
        except (DemoError, httpx.HTTPError) as exc:
            print(f"loancrm: demo seeding stopped ({exc}); the suite runs on, and the next `loancrm up` "
                  "resumes the seeding", file=sys.stderr, flush=True)

    return supervisor.run_all(kernel, on_ready=seed_demo)


def _demo_generate(args: argparse.Namespace) -> int:
    from loancrm.generate import GenerationError, generate

    try:
        summary = generate(args.customers, args.seed, as_of=args.as_of, out=args.out, chunk_size=args.chunk_size,
                           feed_months=args.feed_months, history_months=args.history_months,
                           workers=args.workers)
    except (GenerationError, ValueError) as exc:
        print(f"loancrm: {exc}", file=sys.stderr)
        return 2
    _print_json(summary.__dict__)
    return 0


def _ensure_champion(kernel: KernelSettings) -> None:
    from services.scoring.registry.flows import ensure_default_champion

    installed = ensure_default_champion(kernel)
    if installed is not None:
        print(f"Trained and installed the default scoring champion {installed.label} (German credit data).",
              flush=True)


def _print_json(report: object) -> None:
    if hasattr(report, "model_dump_json"):
        print(report.model_dump_json(indent=2))
    else:
        print(json.dumps(report, indent=2, default=str))


def _scoring_train(args: argparse.Namespace) -> int:
    from services.scoring.cli import run_scoring_train

    _print_json(run_scoring_train(args))
    return 0


def _scoring_psi(args: argparse.Namespace) -> int:
    from services.scoring.cli import run_psi

    _print_json(run_psi(args))
    return 0


def _customers_import(args: argparse.Namespace) -> int:
    from services.customer.imports.flows import run_import_cli

    report = run_import_cli(args.file, branch=args.branch, batch_size=args.batch_size)
    _print_json(report)
    return 1 if report.failed else 0


def _customers_refresh(args: argparse.Namespace) -> int:
    from services.customer.portrait.scheduled import run_refresh_cli

    _print_json(run_refresh_cli(args.clusters))
    return 0


def _customers_rotate(_args: argparse.Namespace) -> int:
    from services.customer.customers.scheduled import run_rotate_keys_cli

    print(f"re-encrypted {run_rotate_keys_cli()} customers with the active key")
    return 0


def _monitoring_rotate(_args: argparse.Namespace) -> int:
    from services.monitoring.transactions.scheduled import run_rotate_keys_cli

    print(f"re-encrypted {run_rotate_keys_cli()} feed rows with the active key")
    return 0


def _monitoring_cob(args: argparse.Namespace) -> int:
    from services.monitoring.cob.scheduled import run_cob_cli
    from services.monitoring.errors import DomainError

    try:
        report = run_cob_cli(load_settings(KernelSettings), args.date, through=args.through)
    except DomainError as exc:
        print(f"loancrm: --{'through' if exc.field == 'through' else 'date'}: {exc.message}", file=sys.stderr)
        return 2
    _print_json(report)
    return 0 if report.status == "completed" else 1


def _screening_review(args: argparse.Namespace) -> int:
    from loancrm.screening_review import run

    try:
        reviews = run(load_settings(KernelSettings), args.truth, args.as_of or date.today(), limit=args.limit)
    except (ValueError, OSError) as exc:
        print(f"loancrm: screening review: --truth: {exc}", file=sys.stderr)
        return 2
    _print_json([review.model_dump(mode="json") for review in reviews])
    return 0


def _rules_review(args: argparse.Namespace) -> int:
    from services.monitoring.errors import DomainError
    from services.monitoring.rules.flows import run_review_cli
    from shared.errors import Problem

    try:
        reviews = run_review_cli(load_settings(KernelSettings), args.since, args.until, branch=args.branch,
                                 codes=args.rule, truth=args.truth)
    except DomainError as exc:
        print(f"loancrm: rules review: --{exc.field}: {exc.message}", file=sys.stderr)
        return 2
    except (Problem, OSError) as exc:
        print(f"loancrm: rules review: {getattr(exc, 'detail', None) or exc}", file=sys.stderr)
        return 2
    _print_json([review.model_dump(mode="json") for review in reviews])
    return 0


def _worker(args: argparse.Namespace) -> int:
    from services.monitoring.cob.workers import run_worker

    return run_worker(load_settings(KernelSettings), threads=args.threads)


def _repayments_import(args: argparse.Namespace) -> int:
    from shared.errors import Problem
    from services.monitoring.repayment_files.flows import run_import_cli
    from services.monitoring.repayment_files.models import RepaymentFileRead

    try:
        job = run_import_cli(load_settings(KernelSettings), Path(args.file), source=args.source)
    except Problem as exc:
        print(f"loancrm: {args.file}: {exc.detail or exc.title}", file=sys.stderr)
        return 2
    _print_json(RepaymentFileRead.model_validate(job))
    return 1 if job.failed else 0


def _study_relationship(args: argparse.Namespace) -> int:
    from services.scoring.study.cli import run_study_cli
    from shared.errors import Problem

    try:
        report = run_study_cli(args)
    except Problem as exc:
        print(f"loancrm: study: {exc.detail or exc.title}", file=sys.stderr)
        return 2 if exc.status in (401, 409, 422) else 1
    _print_json({"sample": report["sample"], "relationship": report["relationship"],
                 "joint_test": report["joint_test"], "lift": report["lift"],
                 "written_to": str(args.out) if args.out else None})
    return 0


def _serve(args: argparse.Namespace) -> int:
    from loancrm import supervisor

    _check_service_settings()
    supervisor.serve(load_settings(KernelSettings), args.service)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from loancrm import migrate

    kernel = load_settings(KernelSettings)
    services = (args.service,) if args.service else SERVICES
    for service in services:
        if args.downgrade:
            migrate.downgrade(kernel.database_url(service), service, args.downgrade)
        else:
            migrate.upgrade(kernel.database_url(service), service)
        print(f"{service}: {'downgraded to ' + args.downgrade if args.downgrade else 'at head'}")
    if args.bootstrap:
        _bootstrap(kernel)
    return 0


def _bootstrap(kernel: KernelSettings) -> None:
    """The gateway's signing key and first admin, for a deployment's one-shot step (docker-compose.yml's
    `migrate`), where no `loancrm up` runs. Where secrets may not be generated, the admin's password must be
    given too: a generated one would only be shown in a container's log."""
    from loancrm import bootstrap
    from shared.files import MissingSecret

    admin = load_settings(bootstrap.AdminSettings)
    if admin.password is None and not kernel.generate_secrets:
        raise MissingSecret("LOANCRM_ADMIN_PASSWORD: not set, and LOANCRM_GENERATE_SECRETS is false; set it (or "
                            "a file loancrm_admin_password in LOANCRM_SECRETS_DIR, as `loancrm secrets generate` "
                            "makes)")
    generated = bootstrap.bootstrap_gateway(kernel, load_settings(GatewaySettings), admin)
    if generated:
        print(f"Created admin user {admin.user!r} with one-time password: {generated}", flush=True)


def _make_migration(args: argparse.Namespace) -> int:
    from loancrm import migrate

    migrate.make_revision(load_settings(KernelSettings), args.service, args.message)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    import importlib

    from tqdm import tqdm

    from shared.db import Database

    kernel = load_settings(KernelSettings)
    broken = False
    for service in (args.service,) if args.service else SERVICES:
        trail = importlib.import_module("gateway.db" if service == "gateway" else f"services.{service}.db").audit
        database = Database(kernel.database_url(service))
        try:
            with database.engine.connect() as connection, tqdm(
                    total=trail.count(connection), desc=service, unit="row", file=sys.stderr, leave=False,
                    disable=not sys.stderr.isatty()) as bar:
                verdict = trail.verify(connection, progress=bar)
        finally:
            database.dispose()
        if verdict.broken is None:
            print(f"{service}: ok: {verdict.rows} rows")
        else:
            broken = True
            print(f"{service}: broken at row {verdict.broken.seq}: {verdict.broken.problem} "
                  f"({verdict.rows} rows verified before it)")
    return 1 if broken else 0


def _gateway_session(kernel: KernelSettings):  # noqa: ANN202
    """The gateway's database, migrated, for a command that acts on users or keys directly."""
    from loancrm import migrate
    from shared.db import Database

    migrate.upgrade(kernel.database_url("gateway"), "gateway")
    return Database(kernel.database_url("gateway"))


def _user_command(act) -> int:  # noqa: ANN001
    """Run `act(session, kernel)` on the gateway's database; a refusal is one line on stderr and exit code 1."""
    from shared.errors import Problem

    kernel = load_settings(KernelSettings)
    database = _gateway_session(kernel)
    try:
        with database.session() as session:
            message = act(session, kernel)
            session.commit()
    except Problem as exc:
        print(f"loancrm: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(message)
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.users.service import create_user

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    try:
        command = UserCreate(username=args.username, password=password, roles=args.role, branch=args.branch)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"loancrm: {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2

    def act(session, _kernel):  # noqa: ANN001, ANN202
        user = create_user(session, command, created_by="cli")
        return f"created user {user.username} ({', '.join(user.roles)})"

    return _user_command(act)


def _describe(user) -> str:  # noqa: ANN001
    return f"{user.username}\t{user.status.value}\t{','.join(user.roles)}\t{user.branch or '-'}"


def _user_list(args: argparse.Namespace) -> int:
    from gateway.users.models import UserStatus
    from gateway.users.service import list_users

    def act(session, _kernel):  # noqa: ANN001, ANN202
        status = UserStatus(args.status) if args.status else None
        users = every_item(lambda paging: list_users(session, paging, list, status=status))
        return "\n".join(["username\tstatus\troles\tbranch", *(_describe(u) for u in users)])

    return _user_command(act)


def _user_disable(args: argparse.Namespace) -> int:
    from gateway.users.service import disable_user

    return _user_command(lambda session, kernel: "disabled " + _describe(disable_user(
        session, args.username, actor="cli", token_lifetime_seconds=kernel.token_max_lifetime_seconds)))


def _user_enable(args: argparse.Namespace) -> int:
    from gateway.users.service import enable_user

    return _user_command(lambda session, _kernel: "enabled " + _describe(enable_user(
        session, args.username, actor="cli")))


def _user_reset_password(args: argparse.Namespace) -> int:
    from gateway.users.service import reset_password

    def act(session, kernel):  # noqa: ANN001, ANN202
        user, one_time = reset_password(session, args.username, actor="cli",
                                        token_lifetime_seconds=kernel.token_max_lifetime_seconds)
        return (f"one-time password for {user.username}: {one_time}\n"
                "It only serves to choose a new password (POST /auth/password); the user's tokens are revoked.")

    return _user_command(act)


def _user_set_access(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.users.models import AccessChange
    from gateway.users.service import change_access

    fields: dict[str, object] = {}
    if args.role:
        fields["roles"] = args.role
    if args.no_branch:
        fields["branch"] = None
    elif args.branch is not None:
        fields["branch"] = args.branch
    try:
        change = AccessChange(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"loancrm: {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    return _user_command(lambda session, kernel: "changed " + _describe(change_access(
        session, args.username, change, actor="cli", token_lifetime_seconds=kernel.token_max_lifetime_seconds)))


def _describe_client(client) -> str:  # noqa: ANN001
    status = "active" if client.active else "disabled"
    return (f"{client.client_id}\t{status}\t{client.role}\t{' '.join(client.scopes)}\t"
            f"{client.rate_limit_per_minute or '-'}")


def _client_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.clients.models import ClientCreate
    from gateway.clients.service import create_client

    try:
        command = ClientCreate(client_id=args.client_id, name=args.name or args.client_id, role=args.role,
                               branch=args.branch, scopes=args.scope, rate_limit_per_minute=args.rate_limit)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"loancrm: {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2

    def act(session, _kernel):  # noqa: ANN001, ANN202
        client, secret = create_client(session, command, created_by="cli")
        return (f"created client {_describe_client(client)}\nclient_secret: {secret}\n"
                "Shown this once; give it to the partner over a safe channel.")

    return _user_command(act)


def _client_list(_args: argparse.Namespace) -> int:
    from gateway.clients.service import list_clients

    def act(session, _kernel):  # noqa: ANN001, ANN202
        clients = every_item(lambda paging: list_clients(session, paging, list))
        return "\n".join(["client_id\tstatus\trole\tscopes\trate_limit_per_minute",
                          *(_describe_client(c) for c in clients)])

    return _user_command(act)


def _client_rotate_secret(args: argparse.Namespace) -> int:
    from gateway.clients.service import rotate_client_secret

    def act(session, kernel):  # noqa: ANN001, ANN202
        client, secret = rotate_client_secret(session, args.client_id, actor="cli",
                                              token_lifetime_seconds=kernel.token_max_lifetime_seconds)
        return f"client_secret for {client.client_id}: {secret}\nThe old secret and its tokens stop working."

    return _user_command(act)


def _client_disable(args: argparse.Namespace) -> int:
    from gateway.clients.service import disable_client

    return _user_command(lambda session, kernel: "disabled " + _describe_client(disable_client(
        session, args.client_id, actor="cli", token_lifetime_seconds=kernel.token_max_lifetime_seconds)))


def _client_enable(args: argparse.Namespace) -> int:
    from gateway.clients.service import enable_client

    return _user_command(lambda session, _kernel: "enabled " + _describe_client(enable_client(
        session, args.client_id, actor="cli")))


def _client_provision_batch(_args: argparse.Namespace) -> int:
    from loancrm.bootstrap import ensure_batch_client

    def act(session, kernel):  # noqa: ANN001, ANN202
        client_id, changed = ensure_batch_client(session, kernel)
        return f"batch client {client_id}: {'provisioned' if changed else 'already provisioned'}"

    return _user_command(act)


def _keys_list(_args: argparse.Namespace) -> int:
    from gateway.tokens.service import key_states

    return _user_command(lambda session, kernel: "\n".join(
        ["kid\tstate\tsigns from\tretired at", *(
            f"{k.kid}\t{k.state}\t{(k.use_after or k.created_at).isoformat()}\t"
            f"{k.retired_at.isoformat() if k.retired_at else '-'}"
            for k in key_states(session, kernel.token_max_lifetime_seconds))]))


def _keys_rotate(args: argparse.Namespace) -> int:
    from gateway.tokens.service import resolve_passphrase, rotate_signing_key

    gateway = load_settings(GatewaySettings)

    def act(session, kernel):  # noqa: ANN001, ANN202
        # Published now; signing only once every service's cached key set has been refreshed with it.
        delay = args.delay if args.delay is not None else kernel.jwks_cache_seconds + 30
        configured = gateway.key_passphrase.get_secret_value() if gateway.key_passphrase else None
        key = rotate_signing_key(session, resolve_passphrase(kernel, configured), delay_seconds=delay)
        return (f"new signing key {key.kid}: published now, signing from {key.use_after.isoformat()}; "
                f"the previous key stays published until {kernel.token_max_lifetime_seconds} s after that")

    return _user_command(act)


def _secrets_generate(args: argparse.Namespace) -> int:
    from loancrm.secrets import generate

    for name, outcome in generate(args.folder).items():
        print(f"{outcome}\t{args.folder / name}")
    print("Keep these files outside the repository and back them up: without the personal-data key the stored "
          "personal data cannot be read.")
    return 0


def _webhooks_deliver(_: argparse.Namespace) -> int:
    """One relay and delivery pass, as the gateway's background task runs it (for a gateway run with it off)."""
    import asyncio

    from gateway.settings import WebhookSettings
    from gateway.tokens.service import KeyRing, resolve_passphrase
    from gateway.webhooks.flows import Webhooks
    from shared.db import Database

    kernel, gateway = load_settings(KernelSettings), load_settings(GatewaySettings)
    configured = gateway.key_passphrase.get_secret_value() if gateway.key_passphrase else None
    database = Database(kernel.database_url("gateway"))

    async def run():  # noqa: ANN202
        webhooks = Webhooks(database=database, kernel=kernel, settings=load_settings(WebhookSettings),
                            keyring=KeyRing(resolve_passphrase(kernel, configured)))
        try:
            return await webhooks.run_once()
        finally:
            await webhooks.aclose()

    try:
        result = asyncio.run(run())
    finally:
        database.dispose()
    print(f"{result.relayed} deliveries created, {result.attempted} attempted, {result.delivered} delivered")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loancrm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="migrate, bootstrap and run all four services (with a demo portfolio, "
                                        "seeded once)")
    up.add_argument("--no-demo", action="store_true", help="production: no demo users or data")
    up.set_defaults(func=_up)

    demo = commands.add_parser("demo", help="demo data").add_subparsers(dest="action", required=True)
    gen = demo.add_parser("generate", help="a coherent portfolio at scale, bulk-loaded into every service's "
                                           "database, with its planted ground truth in files (resumable)")
    gen.add_argument("--customers", type=int, required=True)
    gen.add_argument("--seed", type=int, default=7, help="the same seed gives the same portfolio")
    gen.add_argument("--as-of", type=date.fromisoformat, default=date.today(),
                     help="the business date the portfolio stands at (default today)")
    gen.add_argument("--out", type=Path, default=None,
                     help="folder for the ground truth, the bureau feed and the resume state (default VAR/generated)")
    gen.add_argument("--chunk-size", type=int, default=2000, help="customers per transaction")
    gen.add_argument("--feed-months", type=int, default=6, help="months of account transactions")
    gen.add_argument("--history-months", type=int, default=24, help="how far back applications go")
    gen.add_argument("--workers", type=int, default=None,
                     help="processes building and writing chunks (default: one per core, one more on PostgreSQL)")
    gen.set_defaults(func=_demo_generate)

    serve = commands.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICES)
    serve.set_defaults(func=_serve)

    mig = commands.add_parser("migrate", help="bring every service's database to the latest schema")
    mig.add_argument("--service", choices=SERVICES)
    mig.add_argument("--downgrade", metavar="REVISION", help="go back to REVISION ('base' removes everything)")
    mig.add_argument("--bootstrap", action="store_true",
                     help="then create the gateway's signing key and the first admin (LOANCRM_ADMIN_PASSWORD)")
    mig.set_defaults(func=_migrate)

    make = commands.add_parser("makemigration", help="(developers) autogenerate a migration for one service")
    make.add_argument("service", choices=SERVICES)
    make.add_argument("message")
    make.set_defaults(func=_make_migration)

    user = commands.add_parser("user", help="manage gateway users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", action="append", required=True,
                     choices=[role.value for role in Role])
    add.add_argument("--branch")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=_user_add)
    listing = user.add_parser("list", help="users with their status, roles and branch")
    listing.add_argument("--status", choices=["active", "disabled", "password_change_required"])
    listing.set_defaults(func=_user_list)
    for name, func, text in (("disable", _user_disable, "disable a user; its tokens stop working"),
                             ("enable", _user_enable, "enable a disabled user"),
                             ("reset-password", _user_reset_password,
                              "print a one-time password the user must replace; its tokens stop working")):
        action = user.add_parser(name, help=text)
        action.add_argument("username")
        action.set_defaults(func=func)
    access = user.add_parser("set-access", help="change a user's roles and/or branch; its tokens stop working")
    access.add_argument("username")
    access.add_argument("--role", action="append", choices=[role.value for role in Role],
                        help="the new roles (repeat); others are dropped")
    branch = access.add_mutually_exclusive_group()
    branch.add_argument("--branch")
    branch.add_argument("--no-branch", action="store_true", help="remove the branch")
    access.set_defaults(func=_user_set_access)

    client = commands.add_parser("client", help="OAuth clients: partner systems with a client id and secret"
                                 ).add_subparsers(dest="action", required=True)
    create = client.add_parser("create", help="register a client and print its secret (shown once)")
    create.add_argument("client_id")
    create.add_argument("--name", help="who the client is (default: the client id)")
    create.add_argument("--role", default=Role.PARTNER.value,
                        choices=[role.value for role in Role if role is not Role.ADMIN])
    create.add_argument("--branch", help="required for a loan officer")
    create.add_argument("--scope", action="append", help="an allowed scope (repeat); default: all of the role's")
    create.add_argument("--rate-limit", type=int, metavar="PER_MINUTE",
                        help="requests per minute; default: LOANCRM_GATEWAY_RATE_LIMIT_PER_MINUTE")
    create.set_defaults(func=_client_create)
    client.add_parser("list", help="clients with their status, role, scopes and limit").set_defaults(
        func=_client_list)
    client.add_parser("provision-batch", help="register COB's own client with LOANCRM_BATCH_CLIENT_SECRET (what "
                                              "`loancrm up` does at first start)").set_defaults(
        func=_client_provision_batch)
    for name, func, text in (("rotate-secret", _client_rotate_secret,
                              "print a new secret; the old one and its tokens stop working"),
                             ("disable", _client_disable, "disable a client; its tokens stop working"),
                             ("enable", _client_enable, "enable a disabled client")):
        action = client.add_parser(name, help=text)
        action.add_argument("client_id")
        action.set_defaults(func=func)

    keys = commands.add_parser("keys", help="the gateway's token signing keys").add_subparsers(
        dest="action", required=True)
    keys.add_parser("list", help="signing keys and their state").set_defaults(func=_keys_list)
    rotate = keys.add_parser("rotate", help="add a signing key: published now, used after --delay seconds")
    rotate.add_argument("--delay", type=int, metavar="SECONDS",
                        help="default: LOANCRM_JWKS_CACHE_SECONDS + 30, so every service knows the key first")
    rotate.set_defaults(func=_keys_rotate)
    keep = commands.add_parser("secrets", help="keys a deployment mounts instead of generating them").add_subparsers(
        dest="action", required=True)
    made = keep.add_parser("generate", help="make each missing key file in FOLDER (existing ones are kept)")
    made.add_argument("folder", type=Path, help="e.g. deploy/secrets, which docker-compose.yml mounts")
    made.set_defaults(func=_secrets_generate)
    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="walk each service's hash chain; report the first changed or deleted row")
    verify.add_argument("--service", choices=SERVICES)
    verify.set_defaults(func=_audit_verify)
    scoring = commands.add_parser("scoring", help="credit scoring models").add_subparsers(dest="action", required=True)
    from services.scoring.cli import add_psi_arguments, add_scoring_train_arguments

    train = scoring.add_parser("train", help="train a scorecard and a challenger; register them as drafts")
    add_scoring_train_arguments(train).set_defaults(func=_scoring_train)
    psi = scoring.add_parser("psi", help="population stability of a model against recent scoring traffic")
    add_psi_arguments(psi).set_defaults(func=_scoring_psi)

    study = commands.add_parser("study", help="studies of the book").add_subparsers(dest="action", required=True)
    from services.scoring.study.cli import add_study_arguments

    relationship = study.add_parser("relationship", help="does relationship lower default? logistic regression "
                                                         "with controls on a point-in-time extract, over HTTP")
    add_study_arguments(relationship).set_defaults(func=_study_relationship)

    customers = commands.add_parser("customers", help="customer records").add_subparsers(dest="action", required=True)
    imp = customers.add_parser("import", help="import customers from CSV or JSON lines, safely re-runnable")
    imp.add_argument("file")
    imp.add_argument("--branch", help="branch for rows that name none")
    imp.add_argument("--batch-size", type=int, default=1000)
    imp.set_defaults(func=_customers_import)
    refresh = customers.add_parser("refresh-segments", help="recompute portraits, segments and clusters")
    refresh.add_argument("--clusters", type=int, default=4)
    refresh.set_defaults(func=_customers_refresh)
    customers.add_parser("rotate-keys", help="re-encrypt personal data with the active key").set_defaults(
        func=_customers_rotate)

    repayments = commands.add_parser("repayments", help="repayments").add_subparsers(dest="action", required=True)
    posting = repayments.add_parser("import", help="post a repayment file (CSV; README \"Bulk repayment files\") "
                                                   "as one job with a progress bar; re-running resumes, never "
                                                   "posts a row twice")
    posting.add_argument("file")
    posting.add_argument("--source", required=True, help="the file's sender: its references are unique per source")
    posting.set_defaults(func=_repayments_import)
    monitoring = commands.add_parser("monitoring", help="post-loan monitoring").add_subparsers(
        dest="action", required=True)
    cob = monitoring.add_parser("cob", help="close of business for a date: age, classify, re-score, alert")
    cob.add_argument("--date", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="the day after the last closed one, or an unfinished day to resume")
    cob.add_argument("--through", type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="catch up: close every day from --date through this one, in order")
    cob.set_defaults(func=_monitoring_cob)
    monitoring.add_parser("rotate-keys", help="re-encrypt the feed's accounts with the active key").set_defaults(
        func=_monitoring_rotate)

    rules = commands.add_parser("rules", help="early-warning rules").add_subparsers(dest="action", required=True)
    review = rules.add_parser("review", help="per rule: precision, recall and lead time to default over a period")
    review.add_argument("--since", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD")
    review.add_argument("--until", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD")
    review.add_argument("--branch", help="one branch only")
    review.add_argument("--rule", action="append", metavar="CODE", help="this rule only (repeatable)")
    review.add_argument("--truth", type=Path, metavar="FILE",
                        help='ground truth, JSON lines {"loan_id": ..., "defaulted_on": "YYYY-MM-DD"} (README)')
    review.set_defaults(func=_rules_review)

    screening = commands.add_parser("screening", help="application screening").add_subparsers(dest="action",
                                                                                             required=True)
    checks = screening.add_parser("review", help="every customer on the book screened, each check's precision and "
                                                 "recall against a ground-truth file's planted patterns")
    checks.add_argument("--truth", type=Path, required=True, metavar="FILE",
                        help="ground truth, e.g. the ground_truth.jsonl of `loancrm demo generate` (README)")
    checks.add_argument("--as-of", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="the day the feed is read back from (default today)")
    checks.add_argument("--limit", type=int, default=None, metavar="N", help="the first N customers by id only")
    checks.set_defaults(func=_screening_review)

    worker = commands.add_parser("worker", help="age close-of-business chunks from the task queue "
                                               "(LOANCRM_COB_BROKER_URL) until stopped")
    worker.add_argument("--threads", type=int, default=1, help="chunks aged at once (default 1)")
    worker.set_defaults(func=_worker)
    webhooks = commands.add_parser("webhooks", help="webhook deliveries").add_subparsers(dest="action", required=True)
    webhooks.add_parser("deliver", help="relay new events and send due webhooks, once").set_defaults(
        func=_webhooks_deliver)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Whatever a command writes (databases, keys, secrets, reports) is the operator's alone.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"loancrm: invalid setting {exc}", file=sys.stderr)
        return 2
