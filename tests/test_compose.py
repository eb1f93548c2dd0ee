"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked against the code."""

import re
from pathlib import Path

import yaml

from gateway.settings import GatewaySettings
from loancrm.bootstrap import AdminSettings
from shared.settings import SECRETS_DIR_VARIABLE, SERVICES, BatchSettings, KernelSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _known_variables() -> set[str]:
    known = {SECRETS_DIR_VARIABLE}
    for cls in (KernelSettings, GatewaySettings, AdminSettings, BatchSettings, *_service_settings()):
        prefix = cls.model_config["env_prefix"]
        known |= {(prefix + name).upper() for name in cls.model_fields}
    return known


def _service_settings():
    import importlib

    for service in ("customer", "scoring", "monitoring"):
        try:
            module = importlib.import_module(f"services.{service}.settings")
        except ModuleNotFoundError:
            continue
        yield from (v for v in vars(module).values()
                    if isinstance(v, type) and "env_prefix" in getattr(v, "model_config", {})
                    and v.__module__ == module.__name__)


def test_every_service_of_the_suite_is_deployed_with_its_port_and_health_check():
    services = COMPOSE["services"]
    for name in SERVICES:
        spec = services[name]
        assert spec["command"] == ["loancrm", "serve", name]
        port = str(KernelSettings().port(name))
        assert spec["environment"][f"LOANCRM_{name.upper()}_PORT"] == port
        assert port in " ".join(spec["healthcheck"]["test"])
        assert spec["restart"] == "unless-stopped"
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["gateway"]["ports"] == ["8000:8000"]
    assert all("ports" not in services[name] for name in ("customer", "scoring", "monitoring"))
    assert services["migrate"]["command"] == ["loancrm", "migrate"]
    assert {"postgres", "redis"} <= set(services)
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]


def test_every_variable_the_compose_file_sets_is_read_by_the_code():
    known = _known_variables()
    for name, spec in COMPOSE["services"].items():
        for variable in spec.get("environment", {}):
            if variable.startswith("LOANCRM_"):
                assert variable in known, f"{name} sets {variable}, which no settings class reads"


def test_peer_urls_point_at_services_that_exist_on_their_ports():
    env = COMPOSE["services"]["gateway"]["environment"]
    for name in SERVICES:
        url = env[f"LOANCRM_{name.upper()}_URL"]
        host, port = re.match(r"http://([a-z]+):(\d+)$", url).groups()
        assert host == name and int(port) == KernelSettings().port(name)
    for name in SERVICES:
        database = COMPOSE["services"][name]["environment"][f"LOANCRM_{name.upper()}_DATABASE_URL"]
        assert database.startswith("postgresql+psycopg://") and database.endswith(f"/loancrm_{name}")


def test_no_secret_is_written_into_the_compose_file():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD" in text
    assert not re.search(r"(PASSWORD|PASSPHRASE):\s*['\"]?[A-Za-z0-9]", text)


def test_the_production_profile_turns_docs_and_metrics_off_everywhere():
    for name in SERVICES:
        env = COMPOSE["services"][name]["environment"]
        settings = KernelSettings(docs_enabled=env["LOANCRM_DOCS_ENABLED"],
                                  metrics_enabled=env["LOANCRM_METRICS_ENABLED"])
        assert not settings.docs_enabled and not settings.metrics_enabled, name


def test_no_container_generates_a_key_and_each_gets_the_keys_its_service_reads():
    from loancrm.secrets import SECRETS

    needs = {"gateway": {"loancrm_gateway_key_passphrase"},
             "customer": {"loancrm_customer_pii_keys", "loancrm_customer_pii_hash_key"},
             "scoring": {"loancrm_scoring_hash_key"}, "monitoring": {"loancrm_batch_client_secret"}}
    assert set().union(*needs.values()) == set(SECRETS)
    known = _known_variables()
    for name in SERVICES:
        spec = COMPOSE["services"][name]
        env = spec["environment"]
        assert env["LOANCRM_GENERATE_SECRETS"] == "false" and env["LOANCRM_SECRETS_DIR"] == "/run/secrets"
        assert set(spec.get("secrets", [])) == needs[name], name
        for secret in spec.get("secrets", []):
            # The file name is the variable it sets, and a settings class reads that variable.
            assert secret.upper() in known, secret
            source = COMPOSE["secrets"][secret]["file"]
            assert source == f"./deploy/secrets/{secret}"
    # The secret files are the operator's: never committed, never copied into the image.
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "deploy/secrets/" in (ROOT / ".dockerignore").read_text().split()


def test_what_a_service_keeps_on_disk_outlives_its_container():
    for name in SERVICES:
        spec = COMPOSE["services"][name]
        var_dir = spec["environment"]["LOANCRM_VAR_DIR"]
        mounts = {m.split(":")[1]: m.split(":")[0] for m in spec["volumes"]}
        assert mounts.get(var_dir) in COMPOSE["volumes"], name
    assert "ENV LOANCRM_VAR_DIR=/var/lib/loancrm" in (ROOT / "Dockerfile").read_text()


def test_cob_workers_take_chunks_from_the_broker_on_the_monitoring_database():
    from services.monitoring.settings import CobQueueSettings

    services = COMPOSE["services"]
    worker, monitoring = services["worker"], services["monitoring"]
    assert worker["command"] == ["loancrm", "worker"]
    assert worker["image"] == monitoring["image"] and worker["restart"] == "unless-stopped"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert "ports" not in worker and "healthcheck" in services["rabbitmq"]
    # The run that sends the chunks and the workers that age them share the broker, the queue and the database.
    for variable in ("LOANCRM_COB_BROKER_URL", "LOANCRM_MONITORING_DATABASE_URL"):
        assert worker["environment"][variable] == monitoring["environment"][variable]
    broker = worker["environment"]["LOANCRM_COB_BROKER_URL"]
    assert broker.startswith("amqp://") and "@rabbitmq:5672/" in broker and "${RABBITMQ_PASSWORD" in broker
    settings = CobQueueSettings(broker_url=broker)
    assert worker["environment"].get("LOANCRM_COB_QUEUE", settings.queue) == settings.queue
    assert any(m.endswith(":/var/lib/rabbitmq") for m in services["rabbitmq"]["volumes"])
