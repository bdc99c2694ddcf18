"""One Settings object, read from the environment (PLANTWATCH_*) and an optional .env file."""

import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from plantwatch.adapters.modules.catalog import module_config
from plantwatch.domain.access import Role
from plantwatch.domain.incidents import MAX_ACTOR_CHARS
from plantwatch.domain.modules import Module
from plantwatch.domain.plausibility import PlausibilityLimits

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ApiKeyGrant(BaseModel):
    """A key's entry in api_keys when it has a name: its role, and who it is. Incident actions made with
    the key are recorded under the name (see entrypoints/api/routers/incidents.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    name: str = Field(min_length=1, max_length=MAX_ACTOR_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$")


class Settings(BaseSettings):
    # hide_input_in_errors: a bad setting must not print the secret it holds
    model_config = SettingsConfigDict(
        env_prefix="PLANTWATCH_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    # Embedded default: a SQLite file beside the working directory. PostgreSQL by URL, e.g.
    # postgresql+psycopg://postgres@127.0.0.1:5432/test
    # repr=False here and on every secret: a logged or printed Settings shows no password or key
    database_url: str = Field(default="sqlite:///plantwatch.db", repr=False)
    models_dir: Path = Path("models")
    datasets_dir: Path = Path("datasets")
    # Where the team keeps read-only copies of the real public data sets (beside the project root).
    shared_datasets_dir: Path = Path("../shared/datasets")

    # Module configurations (YAML) that add modules or override the built-in ones (see `plantwatch modules`).
    modules_dir: Path = Path("modules")

    # Which registered detector each module serves; its production version is loaded at start-up (see
    # `plantwatch models`), and the API and workers look for a promotion or rollback this often (0: never).
    # Chosen from tuning data only (docs/benchmarks.md, "Defaults"): isolation forest on the generated energy
    # set, PCA T²+Q on TEP's tuning runs, the GRU forecaster on BATADAL attacks 1-3.
    energy_model: str = "iforest"
    machine_model: str = "pca"
    cyber_model: str = "gru"
    model_reload_interval_s: float = Field(default=2.0, ge=0)

    # Drift warning: over the last drift_window_readings readings of a module (once it has at least
    # drift_min_readings), a feature's PSI against the training data above drift_psi_warning, or its share
    # of readings outside the training range above drift_out_of_range_warning, stores a drift event.
    drift_window_readings: int = Field(default=1000, ge=1)
    drift_min_readings: int = Field(default=100, ge=1)
    drift_psi_warning: float = Field(default=0.25, gt=0)
    drift_out_of_range_warning: float = Field(default=0.05, gt=0, le=1)
    # Modules beyond the seed's serve their configuration's default_detector unless `module_models` names
    # one, e.g. PLANTWATCH_MODULE_MODELS='{"valve": "lstm_ae"}'.
    module_models: dict[str, str] = Field(default_factory=dict)

    device: str = "auto"  # "auto" picks CUDA when available, else CPU
    seed: int = 7

    # Threads for the API's sync endpoints; about one per core (see api/app.py).
    api_threads: int = Field(default=2, ge=1)
    # How old the anomaly store revision an API process answers cached pages from may be (api/page_cache.py):
    # another process's new anomaly shows in GET /anomalies within this time; 0 checks the store every time.
    api_page_cache_max_age_s: float = Field(default=0.1, ge=0, le=60)
    # How long GET /health reuses its last store check (routers/health.py); 0 checks on every request.
    health_check_max_age_s: float = Field(default=1.0, ge=0, le=60)
    # Access control (see entrypoints/api/access.py). api_key: the original single key, an admin key; alone,
    # it guards only admin routes (ingest). api_keys: {"<sha256 hex of a key>": "viewer"|"operator"|"admin"}
    # or, to record incident actions under a person's name, {"<digest>": {"role": "operator", "name": "ana"}}
    # (`plantwatch api-key` makes one); once set, every route but /health needs a key.
    api_key: str | None = Field(default=None, repr=False)
    api_keys: dict[str, Role | ApiKeyGrant] = Field(default_factory=dict, repr=False)
    api_rate_limit: str = "200/second"  # per key, per process
    api_auth_failure_limit: str = "20/minute"  # wrong keys per client address, per process
    max_batch_readings: int = Field(default=10_000, ge=1)
    # Request bodies larger than this get a 413 while they stream in, before anything parses them. 10,000
    # readings of the widest module (51 SWaT tags) are about 13 MB of JSON.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    # Plausible readings (checked on ingest, HTTP and MQTT): anything outside is refused with a 422 naming the
    # reading. Per module overrides: {"energy": {"min_value": 0}}.
    readings_earliest: datetime = datetime(1970, 1, 1)
    readings_max_ahead_s: float = Field(default=86_400.0, ge=0)
    """How far past the server's clock (UTC) a reading may be dated: plant clocks drift and zones differ."""
    readings_min_value: float = -1e9
    readings_max_value: float = 1e9
    readings_limits: dict[Module, dict[str, float]] = Field(default_factory=dict)

    # Logs: "json" (one structlog JSON object a line, with request ids) or "console" (for a terminal).
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    # Optional OpenTelemetry tracing of the API (the `otel` extra): a span per request, to the console or to
    # the OTLP collector at OTEL_EXPORTER_OTLP_ENDPOINT; log lines in a span carry its trace_id.
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_service_name: str = "plantwatch"

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_topic_prefix: str = "plantwatch"
    mqtt_share_group: str = "plantwatch-workers"
    # Broker login: a broker that plant devices reach must refuse anonymous clients (docker/mosquitto.conf).
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None

    # Unacknowledged messages the broker may send a worker at once (MQTT v5 Receive Maximum).
    mqtt_receive_maximum: int = Field(default=20, ge=1, le=65_535)
    # A worker handed a source's next message before another worker stored the one before waits this long
    # for that score, so the alarm rule (EWMA, CUSUM, persistence) continues exactly (services/ingest.py).
    alarm_state_wait_s: float = Field(default=5.0, ge=0)
    # Port of the worker's Prometheus endpoint (none when unset).
    worker_metrics_port: int | None = None

    # Chatbot: intents matched with the bundled sentence-embedding model beside keyword rules (false: rules
    # only). Periods such as "last 24 h" count back from the clock, or from the newest stored anomaly
    # ("latest"), for replayed historical data.
    chatbot_embeddings: bool = True
    chatbot_time_anchor: Literal["clock", "latest"] = "clock"
    # Optional OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1) that rewords the chatbot's grounded
    # answers; off unless set.
    llm_url: str | None = None
    llm_model: str = "local"
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_timeout_s: float = Field(default=5.0, gt=0)

    # Incidents: anomalies of one source within this many minutes of an incident's span join it (data time).
    # Energy (15-minute readings) and machine (1-minute readings): six readings. Cyber: a day, for BATADAL's
    # hourly readings, where an attack's effect comes and goes with the daily demand cycle (6 h split
    # attacks 4 and 5 into three incidents each, see benchmarks/incident_benchmark.py); SWaT's 1 s
    # readings want minutes.
    energy_incident_gap_minutes: float = Field(default=90, gt=0)
    machine_incident_gap_minutes: float = Field(default=6, gt=0)
    cyber_incident_gap_minutes: float = Field(default=1440, gt=0)
    # On-delay (ISA-18.2): an incident is annunciated once it holds this many anomalous windows, or one
    # critical window; fewer, and it is kept but never shown as an alarm (see domain/incidents.py).
    incident_on_delay_windows: int = Field(default=3, ge=1)
    # New and escalated incidents are POSTed to these URLs (JSON list in PLANTWATCH_INCIDENT_WEBHOOKS) and,
    # when incident_mqtt is set, published to <mqtt_topic_prefix>/incidents/<module>.
    incident_webhooks: list[str] = Field(default_factory=list)
    incident_mqtt: bool = False
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    notify_max_attempts: int = Field(default=12, ge=1)
    notify_first_retry_s: float = Field(default=2.0, gt=0)
    notify_max_retry_s: float = Field(default=600.0, gt=0)
    # The time zone (IANA name) the dashboard shows wall-clock times (acknowledged at, detected at, kept in
    # UTC) in. Readings' plant local time and the conversion of offsets are each module's `timezone`.
    plant_timezone: str = "UTC"

    @field_validator("api_keys")
    @classmethod
    def _digests_only(cls, keys: dict[str, Role | ApiKeyGrant]) -> dict[str, Role | ApiKeyGrant]:
        for digest in keys:
            if not _SHA256_HEX.match(digest):
                # never echo it: it may be a key pasted in by mistake
                raise ValueError(
                    "api_keys must map SHA-256 hex digests of keys to roles, not keys; "
                    "`plantwatch api-key` prints both"
                )
        return keys

    def model_for(self, module: Module) -> str:
        if module.value in self.module_models:
            return self.module_models[module.value]
        seed_setting = getattr(self, f"{module.value}_model", None)
        if isinstance(seed_setting, str):
            return seed_setting
        return module_config(module).default_detector

    def incident_gap_for(self, module: Module) -> timedelta:
        """The module's own setting; a configured module without one: 60 sampling intervals of its first
        layout (an incident spans a pause of a few dozen readings), or the energy module's gap."""
        minutes = getattr(self, f"{module.value}_incident_gap_minutes", None)
        if minutes is not None:
            return timedelta(minutes=float(minutes))
        interval = module_config(module).layouts[0].sampling_interval
        if interval is None:
            return timedelta(minutes=self.energy_incident_gap_minutes)
        return 60 * pd.Timedelta(interval).to_pytimedelta()

    def database_for_display(self) -> str:
        """The database URL with its password masked, for logs and start-up lines."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    def plausibility(self, module: Module) -> PlausibilityLimits:
        """The module's plausible time and value range: the defaults above with its overrides."""
        limits = PlausibilityLimits(
            earliest=self.readings_earliest,
            max_ahead_s=self.readings_max_ahead_s,
            min_value=self.readings_min_value,
            max_value=self.readings_max_value,
        )
        overrides = self.readings_limits.get(module, {})
        return limits.with_values(overrides.get("min_value"), overrides.get("max_value"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
