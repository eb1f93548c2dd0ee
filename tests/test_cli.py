"""The operator's command line: users, migrations and the first admin."""

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from gateway.main import create_app
from gateway.settings import GatewaySettings
from loancrm.bootstrap import AdminSettings, bootstrap_gateway
from shared.settings import KernelSettings


ADMIN_SIGN_IN = {"username": "admin", "password": "operator-secret-1"}


def _run(args, tmp_path, stdin=""):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env["LOANCRM_VAR_DIR"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "loancrm", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_user_add_creates_a_user_who_can_sign_in(tmp_path):
    created = _run(["user", "add", "li.na", "--role", "collector", "--branch", "SZ004", "--password-stdin"],
                   tmp_path, stdin="collector-password-1\n")
    assert created.returncode == 0, created.stderr
    assert "created user li.na (collector)" in created.stdout
    again = _run(["user", "add", "li.na", "--role", "collector", "--password-stdin"], tmp_path,
                 stdin="collector-password-1\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    with TestClient(create_app(KernelSettings(var_dir=tmp_path), GatewaySettings())) as client:
        token = client.post("/auth/token", data={"username": "li.na", "password": "collector-password-1"})
        assert token.status_code == 200
        assert "monitoring:write" in token.json()["scope"].split()


def test_user_add_refuses_a_short_password_naming_the_field(tmp_path):
    result = _run(["user", "add", "wu.jie", "--role", "auditor", "--password-stdin"], tmp_path, stdin="short\n")
    assert result.returncode == 2 and result.stderr.startswith("loancrm: password:")


def test_migrate_reports_every_service_at_head(tmp_path):
    result = _run(["migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gateway:", "at", "head", "customer:", "at", "head", "scoring:", "at", "head",
                                     "monitoring:", "at", "head"]


def test_the_first_admin_gets_a_one_time_password_only_once(tmp_path):
    _run(["migrate", "--service", "gateway"], tmp_path)
    kernel = KernelSettings(var_dir=tmp_path)
    generated = bootstrap_gateway(kernel, GatewaySettings(), AdminSettings())
    assert generated and len(generated) >= 20
    assert bootstrap_gateway(kernel, GatewaySettings(), AdminSettings()) is None
    with TestClient(create_app(kernel, GatewaySettings())) as client:
        assert client.post("/auth/token", data={"username": "admin", "password": generated}).status_code == 200


def test_an_encrypted_signing_key_needs_its_passphrase(tmp_path):
    _run(["migrate", "--service", "gateway"], tmp_path)
    kernel = KernelSettings(var_dir=tmp_path)
    locked = GatewaySettings(key_passphrase="a-passphrase-for-keys")
    bootstrap_gateway(kernel, locked, AdminSettings(password="operator-secret-1"))
    with TestClient(create_app(kernel, locked)) as client:
        assert client.post("/auth/token", data=ADMIN_SIGN_IN).status_code == 200
    with TestClient(create_app(kernel, GatewaySettings())) as client:
        refused = client.post("/auth/token", data=ADMIN_SIGN_IN)
        assert refused.status_code == 503 and "PASSPHRASE" in refused.json()["detail"]


_UP_WITHOUT_SERVING = """
import contextlib, importlib, os, pathlib, stat, sys
os.umask(0o022)  # an ordinary shell's: what `make run` inherits
from fastapi.testclient import TestClient
from loancrm import cli, supervisor

def run_all(kernel, on_ready=None):
    # Each process as `loancrm serve` builds it, all running at once (so SQLite's -wal and -shm files exist),
    # a request each; then the mode of everything in the var folder.
    with contextlib.ExitStack() as stack:
        for target in supervisor.APPS.values():
            module, _, factory = target.partition(":")
            client = stack.enter_context(TestClient(getattr(importlib.import_module(module), factory)()))
            assert client.get("/health/ready").status_code in (200, 503)
        for path in [kernel.var_dir, *kernel.var_dir.rglob("*")]:
            print(oct(stat.S_IMODE(path.stat().st_mode)), "d" if path.is_dir() else "f", path.name)
    return 0

cli._ensure_champion = lambda kernel: None  # training is not what this checks
supervisor.run_all = run_all
sys.exit(cli.main(["up"]))
"""


def test_every_file_up_writes_is_private_in_a_private_folder(tmp_path):
    """Found 8: `make run` created gateway.db and customer.db mode 0644, the signing key inside in clear."""
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    (var / "left-by-an-older-run.db").write_text("")
    (var / "left-by-an-older-run.db").chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env.update(LOANCRM_VAR_DIR=str(var), LOANCRM_ADMIN_PASSWORD="operator-secret-1")
    result = subprocess.run([sys.executable, "-c", _UP_WITHOUT_SERVING], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = [line.split() for line in result.stdout.splitlines() if line.startswith("0o")]
    names = {name for _, kind, name in seen if kind == "f"}
    assert {"gateway.db", "customer.db", "scoring.db", "monitoring.db", "gateway-key-passphrase",
            "customer-pii-keys.json", "scoring_hash.key"} <= names, names
    assert any(name.endswith("-wal") for name in names) and any(name.endswith("-shm") for name in names), names
    for mode, kind, name in seen:
        assert mode == ("0o700" if kind == "d" else "0o600"), (name, mode)
    for path in var.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def _bootstrapped_gateway(tmp_path):  # noqa: ANN001, ANN202
    """A migrated gateway with its first admin and signing key, and its database (the caller disposes it)."""
    from shared.db import Database

    _run(["migrate", "--service", "gateway"], tmp_path)
    kernel = KernelSettings(var_dir=tmp_path)
    bootstrap_gateway(kernel, GatewaySettings(), AdminSettings(password="operator-secret-1"))
    return kernel, Database(kernel.database_url("gateway"))


def test_the_signing_key_is_stored_encrypted_with_a_generated_passphrase(tmp_path):
    from sqlmodel import select

    from gateway.tokens.models import SigningKey

    _, database = _bootstrapped_gateway(tmp_path)
    with database.session() as session:
        key = session.exec(select(SigningKey)).one()
    database.dispose()
    assert key.encrypted and key.private_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # the database alone cannot sign
        serialization.load_pem_private_key(key.private_pem.encode(), None)
    passphrase = tmp_path / "gateway-key-passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    serialization.load_pem_private_key(key.private_pem.encode(), passphrase.read_text().strip().encode())


def test_a_key_stored_in_clear_by_an_older_version_is_encrypted_on_first_use(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from sqlmodel import select

    from gateway.tokens.models import SigningKey

    kernel, database = _bootstrapped_gateway(tmp_path)
    with database.session() as session:
        key = session.exec(select(SigningKey)).one()
        clear = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key.private_pem = clear.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
        key.public_pem = clear.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        key.encrypted = False
        session.add(key)
        session.commit()
    with TestClient(create_app(kernel, GatewaySettings())) as client:
        assert client.post("/auth/token", data=ADMIN_SIGN_IN).status_code == 200
    with database.session() as session:
        assert session.exec(select(SigningKey)).one().private_pem.startswith("-----BEGIN ENCRYPTED")
    database.dispose()


def _kids(client) -> list[str]:
    return [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]


def test_a_rotated_key_is_published_before_it_signs_and_old_tokens_keep_verifying(tmp_path):
    from jose import jwt

    _run(["migrate", "--service", "gateway"], tmp_path)
    kernel = KernelSettings(var_dir=tmp_path)
    bootstrap_gateway(kernel, GatewaySettings(), AdminSettings(password="operator-secret-1"))
    sign_in = {"username": "admin", "password": "operator-secret-1"}
    with TestClient(create_app(kernel, GatewaySettings())) as client:
        old_token = client.post("/auth/token", data=sign_in).json()["access_token"]
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        # A delay no slow start of the CLI can use up; the clock is then moved past it rather than waited for.
        rotated = _run(["keys", "rotate", "--delay", "600"], tmp_path)
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[3].rstrip(":")
        assert set(_kids(client)) == {old_kid, new_kid}  # published at once
        early = client.post("/auth/token", data=sign_in).json()["access_token"]
        assert jwt.get_unverified_header(early)["kid"] == old_kid  # not used before the delay
        listed = _run(["keys", "list"], tmp_path).stdout
        assert f"{new_kid}\tupcoming" in listed and f"{old_kid}\tsigning" in listed
        with _clock_moved(601):
            fresh = client.post("/auth/token", data=sign_in).json()["access_token"]
        assert jwt.get_unverified_header(fresh)["kid"] == new_kid
        for token in (old_token, fresh):
            assert client.get("/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Once no token of the old key can still be valid, it drops out of the key set.
    later = KernelSettings(var_dir=tmp_path, token_max_lifetime_seconds=900)
    with TestClient(create_app(later, GatewaySettings())) as client:
        assert old_kid in _kids(client)
    with _clock_moved(600 + kernel.token_max_lifetime_seconds + 5), \
            TestClient(create_app(kernel, GatewaySettings())) as client:
        assert _kids(client) == [new_kid]


@contextmanager
def _clock_moved(seconds: int) -> Iterator[None]:
    """The gateway's key clock, `seconds` ahead: key hand-overs are judged by it."""
    import gateway.tokens.service as keys

    real_now = keys._now
    keys._now = lambda: real_now() + timedelta(seconds=seconds)
    try:
        yield
    finally:
        keys._now = real_now


def test_user_lifecycle_from_the_command_line(tmp_path):
    add = _run(["user", "add", "ma.li", "--role", "loan_officer", "--password-stdin"], tmp_path,
               stdin="officer-password-1\n")
    assert add.returncode == 1 and "branch" in add.stderr  # Found 2: no branchless loan officer
    weak = _run(["user", "add", "ma.li", "--role", "auditor", "--password-stdin"], tmp_path, stdin="a" * 12 + "\n")
    assert weak.returncode == 1 and "password" in weak.stderr
    assert _run(["user", "add", "ma.li", "--role", "loan_officer", "--branch", "BJ001", "--password-stdin"], tmp_path,
                stdin="officer-password-1\n").returncode == 0
    disabled = _run(["user", "disable", "ma.li"], tmp_path)
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    assert "ma.li\tdisabled\tloan_officer\tBJ001" in _run(["user", "list"], tmp_path).stdout
    assert _run(["user", "enable", "ma.li"], tmp_path).returncode == 0
    moved = _run(["user", "set-access", "ma.li", "--role", "loan_officer", "--role", "collector", "--branch",
                  "SH002"], tmp_path)
    assert moved.returncode == 0 and "collector,loan_officer\tSH002" in moved.stdout
    assert _run(["user", "set-access", "ma.li", "--no-branch"], tmp_path).returncode == 1
    reset = _run(["user", "reset-password", "ma.li"], tmp_path)
    one_time = reset.stdout.split()[4]
    assert "ma.li\tpassword_change_required" in _run(["user", "list", "--status", "password_change_required"],
                                                       tmp_path).stdout
    with TestClient(create_app(KernelSettings(var_dir=tmp_path), GatewaySettings())) as client:
        refused = client.post("/auth/token", data={"username": "ma.li", "password": one_time})
        assert refused.status_code == 400 and refused.json()["password_change_required"]
        changed = client.post("/auth/password", json={"username": "ma.li", "current_password": one_time,
                                                      "new_password": "a new officer passphrase"})
        assert changed.status_code == 204
        assert client.post("/auth/token", data={"username": "ma.li",
                                                "password": "a new officer passphrase"}).status_code == 200
    assert _run(["user", "disable", "nobody"], tmp_path).returncode == 1
