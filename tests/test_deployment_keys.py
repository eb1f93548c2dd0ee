"""Keys a deployment keeps: read from mounted secret files, never generated inside a container that can be
recreated (issue #20, Found 6)."""

import os
import stat
import subprocess
import sys

import pytest

from gateway.tokens.service import resolve_passphrase
from services.customer.customers.pii import load_vault
from services.customer.settings import CustomerSettings
from services.monitoring.settings import MonitoringSettings
from services.monitoring.transactions.service import load_vault as load_payer_vault
from services.scoring.hashing import load_hash_key
from services.scoring.settings import ScoringSettings
from shared.settings import KernelSettings, SettingsError, load_settings


def _generate(folder):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    return subprocess.run([sys.executable, "-m", "loancrm", "secrets", "generate", str(folder)], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def container(monkeypatch, tmp_path):
    """What docker-compose.yml gives a service: secrets mounted in a folder, generation off, and a var folder
    that is new each time the container is made."""
    secrets = tmp_path / "secrets"
    assert _generate(secrets).returncode == 0
    for name in list(os.environ):
        if name.startswith("LOANCRM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOANCRM_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("LOANCRM_GENERATE_SECRETS", "false")

    def make(name):
        monkeypatch.setenv("LOANCRM_VAR_DIR", str(tmp_path / name))
        return load_settings(KernelSettings)

    return make


def test_personal_data_sealed_in_one_container_opens_in_its_replacement(container):
    first = container("first-container")
    sealed = load_vault(load_settings(CustomerSettings), first).seal("110101199003074514", row_id="c1",
                                                                     field="national_id")
    payer = load_payer_vault(load_settings(MonitoringSettings), first).seal("62220777", row_id="t1",
                                                                            field="payer_account")
    replacement = container("recreated-container")
    vault = load_vault(load_settings(CustomerSettings), replacement)
    assert vault.open(sealed, kid="k1", row_id="c1", field="national_id") == "110101199003074514"
    payers = load_payer_vault(load_settings(MonitoringSettings), replacement)
    assert payers.open(payer, kid="k1", row_id="t1", field="payer_account") == "62220777"
    # Each service its own keys: the customer service's do not open monitoring's.
    with pytest.raises(LookupError):
        vault.open(payer, kid="k1", row_id="t1", field="payer_account")
    # Nothing was generated into either var folder: the keys are the mounted ones.
    assert not any(p.exists() and any(p.iterdir()) for p in (first.var_dir, replacement.var_dir))


def test_every_key_of_the_suite_comes_from_the_mounted_files(container):
    kernel = container("var")
    scoring = load_settings(ScoringSettings)
    assert load_hash_key(scoring, kernel) == scoring.hash_key.get_secret_value().encode()
    gateway_passphrase = (kernel.var_dir.parent / "secrets" / "loancrm_gateway_key_passphrase").read_text().strip()
    from gateway.settings import GatewaySettings

    configured = load_settings(GatewaySettings).key_passphrase
    assert configured is not None and configured.get_secret_value() == gateway_passphrase


@pytest.mark.parametrize("load, variable", [
    (lambda kernel: load_vault(CustomerSettings(), kernel), "LOANCRM_CUSTOMER_PII_KEYS"),
    (lambda kernel: load_payer_vault(MonitoringSettings(), kernel), "LOANCRM_MONITORING_PII_KEYS"),
    (lambda kernel: load_hash_key(ScoringSettings(), kernel), "LOANCRM_SCORING_HASH_KEY"),
    (lambda kernel: resolve_passphrase(kernel, None), "LOANCRM_GATEWAY_KEY_PASSPHRASE"),
])
def test_a_missing_key_stops_start_up_naming_it_instead_of_generating_one(tmp_path, load, variable):
    kernel = KernelSettings(var_dir=tmp_path / "var", generate_secrets=False)
    with pytest.raises(SettingsError, match=variable):
        load(kernel)
    assert not (tmp_path / "var").exists() or not any((tmp_path / "var").iterdir())


def test_the_embedded_default_still_generates_each_key_once(tmp_path):
    kernel = KernelSettings(var_dir=tmp_path)
    first = load_hash_key(ScoringSettings(), kernel)
    assert load_hash_key(ScoringSettings(), kernel) == first
    assert resolve_passphrase(kernel, None) == resolve_passphrase(kernel, None)


def test_generating_secrets_never_replaces_an_existing_key(tmp_path):
    folder = tmp_path / "secrets"
    made = _generate(folder)
    assert made.returncode == 0 and made.stdout.count("created") == 8
    before = {p.name: p.read_text() for p in folder.iterdir()}
    again = _generate(folder)
    assert again.returncode == 0 and again.stdout.count("kept") == 8
    assert {p.name: p.read_text() for p in folder.iterdir()} == before
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    # Each file is a valid value for the variable it is named after.
    CustomerSettings(pii_keys=before["loancrm_customer_pii_keys"].strip()).parsed_keys()
    MonitoringSettings(pii_keys=before["loancrm_monitoring_pii_keys"].strip(),
                       pii_hash_key=before["loancrm_monitoring_pii_hash_key"].strip()).parsed_keys()


def test_a_secrets_folder_that_does_not_exist_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("LOANCRM_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="LOANCRM_SECRETS_DIR"):
        load_settings(KernelSettings)


def _migrate_bootstrap(env):
    return subprocess.run([sys.executable, "-m", "loancrm", "migrate", "--bootstrap"], env=env, capture_output=True,
                          text=True, timeout=300)


def _mounted_for(container, generated, folder):
    """The secret files docker-compose.yml mounts into `container`, and only those."""
    import shutil
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
    folder.mkdir(mode=0o700)
    for name in compose["services"][container].get("secrets", []):
        shutil.copy2(generated / name, folder / name)
    return folder


def test_the_deployments_one_shot_step_makes_the_first_admin_and_the_batch_client_from_the_mounted_files(tmp_path):
    from fastapi.testclient import TestClient

    from gateway.main import create_app

    generated = tmp_path / "generated"
    assert _generate(generated).returncode == 0
    secrets = _mounted_for("migrate", generated, tmp_path / "secrets")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env.update({"LOANCRM_SECRETS_DIR": str(secrets), "LOANCRM_GENERATE_SECRETS": "false",
                "LOANCRM_VAR_DIR": str(tmp_path / "var"),
                "LOANCRM_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"})
    done = _migrate_bootstrap(env)
    assert done.returncode == 0, done.stderr
    assert "password" not in done.stdout  # nothing to show: the operator holds the file
    kernel = KernelSettings(var_dir=tmp_path / "var", gateway_database_url=env["LOANCRM_GATEWAY_DATABASE_URL"])
    from gateway.settings import GatewaySettings

    passphrase = (secrets / "loancrm_gateway_key_passphrase").read_text().strip()
    with TestClient(create_app(kernel, GatewaySettings(key_passphrase=passphrase))) as gateway:
        token = gateway.post("/auth/token", data={
            "username": "admin", "password": (secrets / "loancrm_admin_password").read_text().strip()})
        # COB's own client, with the secret the monitoring container is given: no step by hand after `up`.
        batch = gateway.post("/auth/token", data={
            "grant_type": "client_credentials", "client_id": "loancrm-batch",
            "client_secret": (generated / "loancrm_batch_client_secret").read_text().strip()})
    assert token.status_code == 200, token.text
    assert batch.status_code == 200, batch.text
    # A second run (the step runs on every `docker compose up`) changes nothing.
    assert _migrate_bootstrap(env).returncode == 0


def test_the_one_shot_step_without_an_admin_password_stops_naming_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env.update({"LOANCRM_GENERATE_SECRETS": "false", "LOANCRM_VAR_DIR": str(tmp_path / "var"),
                "LOANCRM_GATEWAY_KEY_PASSPHRASE": "a-configured-passphrase-1"})
    done = _migrate_bootstrap(env)
    assert done.returncode != 0 and "LOANCRM_ADMIN_PASSWORD" in done.stderr, done.stderr
