"""`loancrm`: the operator's command line (start the suite, migrate, manage users, train models)."""

from __future__ import annotations

import argparse
import getpass
import sys

from gateway.settings import GatewaySettings
from gateway.users.models import UserCreate
from shared.settings import SERVICES, KernelSettings, SettingsError, load_settings


def _up(_args: argparse.Namespace) -> int:
    from loancrm import bootstrap, migrate, supervisor

    kernel = load_settings(KernelSettings)
    gateway = load_settings(GatewaySettings)
    admin = load_settings(bootstrap.AdminSettings)
    migrate.upgrade_all(kernel)
    generated = bootstrap.bootstrap_gateway(kernel, gateway, admin)
    if generated:
        print(f"Created admin user {admin.user!r} with one-time password: {generated}\n"
              "Store it now; it is not shown again. Set LOANCRM_ADMIN_PASSWORD to choose your own.", flush=True)
    return supervisor.run_all(kernel)


def _serve(args: argparse.Namespace) -> int:
    from loancrm import supervisor

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
    return 0


def _make_migration(args: argparse.Namespace) -> int:
    from loancrm import migrate

    migrate.make_revision(load_settings(KernelSettings), args.service, args.message)
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.users.service import create_user
    from loancrm import migrate
    from shared.db import Database
    from shared.errors import Problem

    kernel = load_settings(KernelSettings)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    try:
        command = UserCreate(username=args.username, password=password, roles=args.role, branch=args.branch)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"loancrm: {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    migrate.upgrade(kernel.database_url("gateway"), "gateway")
    database = Database(kernel.database_url("gateway"))
    try:
        with database.session() as session:
            user = create_user(session, command, created_by="cli")
            session.commit()
            print(f"created user {user.username} ({', '.join(user.roles)})")
    except Problem as exc:
        print(f"loancrm: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loancrm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("up", help="migrate, bootstrap and run all four services").set_defaults(func=_up)

    serve = commands.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICES)
    serve.set_defaults(func=_serve)

    mig = commands.add_parser("migrate", help="bring every service's database to the latest schema")
    mig.add_argument("--service", choices=SERVICES)
    mig.add_argument("--downgrade", metavar="REVISION", help="go back to REVISION ('base' removes everything)")
    mig.set_defaults(func=_migrate)

    make = commands.add_parser("makemigration", help="(developers) autogenerate a migration for one service")
    make.add_argument("service", choices=SERVICES)
    make.add_argument("message")
    make.set_defaults(func=_make_migration)

    user = commands.add_parser("user", help="manage gateway users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", action="append", required=True,
                     choices=["admin", "loan_officer", "risk_analyst", "collector", "auditor", "partner"])
    add.add_argument("--branch")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=_user_add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"loancrm: invalid setting {exc}", file=sys.stderr)
        return 2
