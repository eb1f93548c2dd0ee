"""A missing or malformed setting stops start-up with one line naming the variable."""

import os
import subprocess
import sys

import pytest

from gateway.settings import GatewaySettings
from shared.settings import KernelSettings, SettingsError, load_settings


@pytest.mark.parametrize(
    ("variable", "value", "cls"),
    [
        ("LOANCRM_CUSTOMER_PORT", "eighty", KernelSettings),
        ("LOANCRM_GATEWAY_PORT", "70000", KernelSettings),
        ("LOANCRM_SCORING_DATABASE_URL", "mysql://root@localhost/x", KernelSettings),
        ("LOANCRM_MONITORING_DATABASE_URL", "::not a url::", KernelSettings),
        ("LOANCRM_CUSTOMER_URL", "customer:8001", KernelSettings),
        ("LOANCRM_LOG_LEVEL", "LOUD", KernelSettings),
        ("LOANCRM_GATEWAY_TOKEN_TTL_SECONDS", "5", GatewaySettings),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, variable, value, cls):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(cls)
    assert str(raised.value).startswith(f"{variable}: ")
    assert "\n" not in str(raised.value)


def test_defaults_are_the_embedded_suite_on_loopback(monkeypatch):
    for name in list(os.environ):
        if name.startswith("LOANCRM_"):
            monkeypatch.delenv(name)
    kernel = load_settings(KernelSettings)
    assert kernel.host == "127.0.0.1"
    assert [kernel.port(s) for s in ("gateway", "customer", "scoring", "monitoring")] == [8000, 8001, 8002, 8003]
    assert kernel.database_url("customer") == "sqlite:///var/customer.db"
    assert kernel.resolved_jwks_url() == "http://127.0.0.1:8000/.well-known/jwks.json"


def test_a_changed_port_moves_the_peer_url_with_it(monkeypatch):
    monkeypatch.setenv("LOANCRM_SCORING_PORT", "9102")
    assert load_settings(KernelSettings).url("scoring") == "http://127.0.0.1:9102"


def test_the_command_line_prints_one_line_and_exits_2(tmp_path):
    env = {**os.environ, "LOANCRM_VAR_DIR": str(tmp_path), "LOANCRM_CUSTOMER_PORT": "not-a-port"}
    result = subprocess.run([sys.executable, "-m", "loancrm", "migrate"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loancrm: invalid setting LOANCRM_CUSTOMER_PORT:")


@pytest.mark.parametrize(("variable", "value"), [("LOANCRM_SCORING_MAX_BATCH_ROWS", "lots"),
                                                 ("LOANCRM_MONITORING_COB_CHUNK_SIZE", "big")])
def test_a_service_setting_stops_serve_with_one_line(tmp_path, variable, value):
    env = {**os.environ, "LOANCRM_VAR_DIR": str(tmp_path), variable: value}
    result = subprocess.run([sys.executable, "-m", "loancrm", "serve", "scoring"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"loancrm: invalid setting {variable}:")


def test_replica_urls_are_read_from_one_comma_separated_setting(monkeypatch):
    monkeypatch.setenv("LOANCRM_CUSTOMER_URLS", "http://customer-1:8001, http://customer-2:8001/")
    monkeypatch.setenv("LOANCRM_CUSTOMER_URL", "http://old:8001")
    kernel = load_settings(KernelSettings)
    assert kernel.urls("customer") == ["http://customer-1:8001", "http://customer-2:8001"]
    assert kernel.url("customer") == "http://customer-1:8001"
    assert kernel.urls("scoring") == ["http://127.0.0.1:8002"]  # one URL, as before
    for bad in ("customer-1:8001", "http://a:8001,http://a:8001"):
        monkeypatch.setenv("LOANCRM_CUSTOMER_URLS", bad)
        with pytest.raises(SettingsError, match="LOANCRM_CUSTOMER_URLS"):
            load_settings(KernelSettings)
