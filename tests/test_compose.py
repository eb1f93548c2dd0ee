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


def _replicas(service: str) -> dict[str, dict]:
    """The compose services that run `service` (several when it has replicas), by name."""
    return {name: spec for name, spec in COMPOSE["services"].items()
            if spec.get("command") == ["loancrm", "serve", service]}


def _loancrm_containers() -> dict[str, dict]:
    return {name: spec for name, spec in COMPOSE["services"].items()
            if str(spec.get("image", "")).startswith("loancrm")}


def test_every_service_of_the_suite_is_deployed_with_its_port_and_health_check():
    services = COMPOSE["services"]
    for name in SERVICES:
        assert services[name]["command"] == ["loancrm", "serve", name]
    for name, spec in ((n, s) for service in SERVICES for n, s in _replicas(service).items()):
        service = spec["command"][2]
        port = str(KernelSettings().port(service))
        assert spec["environment"][f"LOANCRM_{service.upper()}_PORT"] == port
        assert port in " ".join(spec["healthcheck"]["test"])
        assert spec["restart"] == "unless-stopped"
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["gateway"]["ports"] == ["8000:8000"]
    assert [name for name, spec in services.items() if "ports" in spec] == ["gateway"]
    assert services["migrate"]["command"] == ["loancrm", "migrate", "--bootstrap"]
    assert {"postgres", "redis"} <= set(services)
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]


def test_every_variable_the_compose_file_sets_is_read_by_the_code():
    known = _known_variables()
    for name, spec in COMPOSE["services"].items():
        for variable in spec.get("environment", {}):
            if variable.startswith("LOANCRM_"):
                assert variable in known, f"{name} sets {variable}, which no settings class reads"


def test_peer_urls_name_every_replica_of_each_service_on_its_port():
    for container, spec in _loancrm_containers().items():
        # What each container's settings make of its environment: the gateway's upstreams, a peer's peers.
        kernel = KernelSettings(**{k.removeprefix("LOANCRM_").lower(): v for k, v in spec["environment"].items()
                                   if k.removeprefix("LOANCRM_").lower() in KernelSettings.model_fields})
        for name in SERVICES:
            hosts = []
            for url in kernel.urls(name):
                host, port = re.match(r"http://([a-z0-9-]+):(\d+)$", url).groups()
                assert int(port) == KernelSettings().port(name), (container, url)
                hosts.append(host)
            assert sorted(hosts) == sorted(_replicas(name)), (container, name, hosts)
    for name in SERVICES:
        for spec in _replicas(name).values():
            database = spec["environment"][f"LOANCRM_{name.upper()}_DATABASE_URL"]
            assert database.startswith("postgresql+psycopg://") and database.endswith(f"/loancrm_{name}")


def test_a_service_runs_as_two_replicas_alike_in_all_but_name():
    replicas = _replicas("customer")
    assert len(replicas) == 2
    first, second = replicas.values()
    assert first == second  # same database, keys, volume, health check: either may serve any request
    assert len(COMPOSE["services"]["gateway"]["environment"]["LOANCRM_CUSTOMER_URLS"].split(",")) == 2


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
             # The batch client's secret: closure and erasure ask monitoring as the service, not the caller.
             "customer": {"loancrm_customer_pii_keys", "loancrm_customer_pii_hash_key", "loancrm_batch_client_secret"},
             "scoring": {"loancrm_scoring_hash_key"},
             "monitoring": {"loancrm_batch_client_secret", "loancrm_monitoring_pii_keys",
                            "loancrm_monitoring_pii_hash_key"},
             # The one-shot step that makes the signing key, the first admin and COB's batch client.
             "migrate": {"loancrm_gateway_key_passphrase", "loancrm_admin_password", "loancrm_batch_client_secret"}}
    assert set().union(*needs.values()) == set(SECRETS)
    known = _known_variables()
    containers = _loancrm_containers()
    assert set(SERVICES) | {"migrate", "customer-2"} <= set(containers)
    for name, spec in containers.items():
        env = spec["environment"]
        assert env["LOANCRM_GENERATE_SECRETS"] == "false" and env["LOANCRM_SECRETS_DIR"] == "/run/secrets", name
        assert "secrets" not in " ".join(spec["command"]), name  # never `loancrm secrets generate` in a container
        # No key or password written into the environment: they are files under /run/secrets.
        assert not [v for v in env if re.search(r"KEYS?$|PASSPHRASE|PASSWORD|SECRET$", v)], name
        runs = spec["command"][2] if spec["command"][:2] == ["loancrm", "serve"] else name
        if runs in needs:
            assert set(spec.get("secrets", [])) == needs[runs], name
        for secret in spec.get("secrets", []):
            # The file name is the variable it sets, and a settings class reads that variable.
            assert secret.upper() in known, secret
            source = COMPOSE["secrets"][secret]["file"]
            assert source == f"./deploy/secrets/{secret}"
    # The secret files are the operator's: never committed, never copied into the image.
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "deploy/secrets/" in (ROOT / ".dockerignore").read_text().split()


def test_what_a_service_keeps_on_disk_outlives_its_container():
    for name in (n for service in SERVICES for n in _replicas(service)):
        spec = COMPOSE["services"][name]
        var_dir = spec["environment"]["LOANCRM_VAR_DIR"]
        mounts = {m.split(":")[1]: m.split(":")[0] for m in spec["volumes"]}
        assert mounts.get(var_dir) in COMPOSE["volumes"], name
    assert "ENV LOANCRM_VAR_DIR=/var/lib/loancrm" in (ROOT / "Dockerfile").read_text()
    postgres = {m.split(":")[1]: m.split(":")[0] for m in COMPOSE["services"]["postgres"]["volumes"]}
    assert postgres["/var/lib/postgresql/data"] in COMPOSE["volumes"]
    for name, spec in COMPOSE["services"].items():
        for mount in spec.get("volumes", []):
            source = mount.split(":")[0]
            # A named volume is declared (else compose refuses it); anything else is a file of the repo, read-only.
            assert source in COMPOSE["volumes"] or (source.startswith("./") and mount.endswith(":ro")), (name, mount)


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
