"""The operator's command line: users, migrations and the first admin."""

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from gateway.main import create_app
from gateway.settings import GatewaySettings
from loancrm.bootstrap import AdminSettings, bootstrap_gateway
from shared.settings import KernelSettings


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
        assert client.post("/auth/token", data={"username": "admin", "password": "operator-secret-1"}).status_code == 200
    with TestClient(create_app(kernel, GatewaySettings())) as client:
        refused = client.post("/auth/token", data={"username": "admin", "password": "operator-secret-1"})
        assert refused.status_code == 503 and "PASSPHRASE" in refused.json()["detail"]
