"""Configuration: YAML validated with pydantic; ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``)
interpolation for secrets; unknown keys are errors naming the key and the file.

Every command works without a config file (:func:`default_config`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .durations import parse_duration, parse_size


class ConfigError(Exception):
    """A configuration problem; the message names the file and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- sources -------------------------------------------------------------------
class FileSourceConfig(_Model):
    path: str
    follow: bool = False
    format: Literal["auto", "telegram", "x", "canonical"] = "auto"
    poll_interval: float = 0.5  # seconds between checks of followed files (when not watched by inotify)
    watch: Literal["auto", "poll"] = "auto"  # auto: inotify where it works (Linux), else poll; poll: always poll


class MediaDownloadConfig(_Model):
    types: list[str] = ["photo"]
    max_size: int = 20 * 1024 * 1024
    dir: str = "data/media"

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)


class TelegramAccountConfig(_Model):
    """One Telegram account of several (``sources.telegram.accounts``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    api_id: int | None = None  # default: sources.telegram.api_id
    api_hash: SecretStr | None = None  # default: sources.telegram.api_hash
    session: str | None = None  # default: data/telegram-<name>.session (beside sources.telegram.session)
    session_string: SecretStr | None = None
    channels: list[str] = []  # assigned to this account; sources.telegram.channels are spread


class TelegramConfig(_Model):
    api_id: int | None = None
    api_hash: SecretStr | None = None
    session: str = "data/telegram.session"
    session_string: SecretStr | None = None
    channels: list[str] = []
    backfill: str | int = "3d"  # duration or a message count
    gapfill_interval: float = 300.0  # seconds
    # Telethon sleeps over flood waits up to this long itself (its update loop needs it to
    # finish getDifference); longer waits reach the source, which logs and waits them out.
    flood_sleep_threshold: int = Field(60, ge=0, le=3600)
    download_media: MediaDownloadConfig | None = None
    # Several accounts (monitor/sources/telegram/accounts.py); empty: the keys above are the one account.
    accounts: list[TelegramAccountConfig] = []
    channels_per_account: int = Field(500, ge=1, le=1000)  # Telegram's limit is about 500 channels an account

    @field_validator("gapfill_interval", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)


class XConfig(_Model):
    bearer_token: SecretStr | None = None
    accounts: list[str] = []
    searches: list[str] = []
    interval: float = 120.0
    monthly_read_cap: int | None = None
    backfill: str = "1d"
    base_url: str | None = None  # tests point this at a loopback server

    @field_validator("interval", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)


class SourcesConfig(_Model):
    files: list[FileSourceConfig] = []
    telegram: TelegramConfig | None = None
    x: XConfig | None = None


# --- alerts --------------------------------------------------------------------
class SlackDestination(_Model):
    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    base_url: str | None = None  # Web API base (tests: a loopback server)


class EmailDestination(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["email"]
    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field(alias="from")
    to: list[str]
    timeout: float = 30.0
    ca_file: str | None = None  # PEM bundle to trust for tls/starttls (a private CA); default: system CAs


class FileDestination(_Model):
    type: Literal["file"]
    path: str


class ConsoleDestination(_Model):
    type: Literal["console"]


class WebhookDestination(_Model):
    type: Literal["webhook"]
    url: SecretStr
    headers: dict[str, SecretStr] = {}


Destination = Annotated[
    Union[SlackDestination, EmailDestination, FileDestination, ConsoleDestination, WebhookDestination],
    Field(discriminator="type"),
]


class DigestConfig(_Model):
    destination: str
    cron: str = "0 7 * * *"
    window: float = 86400.0

    @field_validator("window", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)


class AlertsConfig(_Model):
    default: list[str] = ["console"]
    destinations: dict[str, Destination] = {}
    digest: DigestConfig | None = None
    templates: str | None = None  # folder with user templates overriding the built-in ones
    max_retry_seconds: float = 3600.0  # give up (status failed) after retrying this long


class HttpConfig(_Model):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9464


class BusSpoolConfig(_Model):
    path: str = "data/bus-spool"  # folder of the collector's on-disk spool
    max_bytes: int = 1024 * 1024 * 1024  # full spool: the sources wait (back-pressure)

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)


class BusConfig(_Model):
    """Redis Streams between collectors and archivers (``run --role collector|archiver``)."""

    url: str = "redis://127.0.0.1:6379/0"  # rediss://... for TLS
    password: SecretStr | None = None  # e.g. ${REDIS_PASSWORD}; else $CLAIMWATCH_REDIS_PASSWORD
    tls_ca_file: str | None = None  # PEM bundle for rediss:// with a private CA
    stream: str = "claimwatch"
    group: str = "archivers"
    name: str | None = None  # this collector's / archiver consumer's name (default: host name)
    maxlen: int = Field(1_000_000, ge=1000)  # approximate stream cap in events (trimmed in entries: bus/publisher.py)
    claim_idle: float = 60.0  # entries pending this long on a dead consumer are taken over
    # archiver: worker processes that decode, match and prepare rows beside the writer (0: in the archiver process)
    preparers: int = Field(1, ge=0, le=16)
    state: str = "data/collector-state.db"  # the collector's own checkpoints
    spool: BusSpoolConfig = BusSpoolConfig()

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("claim_idle", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)


class IncidentsConfig(_Model):
    """Incidents (docs/incidents.md): how hits are grouped into one timeline per event."""

    enabled: bool = True
    window: float = 72 * 3600.0  # a hit joins an incident whose last message is at most this old
    actor_window: float = 24 * 3600.0  # a hit naming no place joins by shared actor within this
    in_memory: int = Field(default=2000, ge=1)  # incidents a writer holds before evicting those past the window

    @field_validator("window", "actor_window", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Config(_Model):
    database: str = "data/claimwatch.db"
    rules: str = "rules/"
    sources: SourcesConfig = SourcesConfig()
    alerts: AlertsConfig = AlertsConfig()
    http: HttpConfig = HttpConfig()
    bus: BusConfig | None = None
    incidents: IncidentsConfig = IncidentsConfig()
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    source_path: str | None = Field(default=None, exclude=True)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> str:
        level = str(v).upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown level {v!r} (one of {', '.join(LOG_LEVELS)})")
        return level

    def destination_names(self) -> set[str]:
        # console is always available, even when not declared.
        return set(self.alerts.destinations) | {"console"}


CONFIG_MAX_NODES = 100_000  # a real config has a few hundred


def default_config() -> Config:
    return Config()


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, *, file: str, where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a loaded YAML tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, file=file, where=f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, file=file, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            env = os.environ.get(name)
            if env is not None:
                return env
            if default is not None:
                return default
            raise ConfigError(f"{file}: {where}: environment variable {name} is not set")

        return _ENV_RE.sub(sub, value)
    return value


# pydantic's names of the schemas inside a field, which it puts in an error's location: a union
# member ("str", "int", a discriminator's value such as "slack"), a validator ("function-after[...]")
_SCHEMA_TAG = re.compile(r"^(?:[a-z][a-z0-9_-]*\[.*\]|str|int|float|bool|bytes|none|constrained-[a-z]+|[A-Z]\w*)$")


def _user_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """``loc`` without pydantic's schema tags, so the path is the one written in the file:
    ``alerts.destinations.s.slack.webhook_url`` -> ``alerts.destinations.s.webhook_url``,
    ``sources.telegram.backfill.str`` -> ``sources.telegram.backfill``. Walks the loaded data:
    a part that is not a key (or index) of the value there and is not the last part (a
    missing key), or that is a schema's name where the value is not a mapping, is a tag."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and (
                (isinstance(node, dict) and i < len(loc) - 1) or not isinstance(node, dict)
                or _SCHEMA_TAG.match(part)):
            continue  # a tag: the value stays where it was
        else:
            node = None
        out.append(part)
    return tuple(out)


def _problem_lines(name: str, doc: Any, data: Any, errors: list[Any]) -> list[str]:
    """One line per location the user wrote: the errors of a union's members at one place
    (``backfill``: not a string, not an integer) are one line."""
    by_loc: dict[tuple[Any, ...], list[Any]] = {}
    for err in errors:
        by_loc.setdefault(_user_loc(data, tuple(err["loc"])), []).append(err)
    problems = []
    for loc_t, errs in by_loc.items():
        loc = _loc(loc_t)
        at = _at(name, doc, loc_t)
        if any(e["type"] == "extra_forbidden" for e in errs):
            problems.append(f"{at}: unknown key '{loc}'")
            continue
        msgs = list(dict.fromkeys(e["msg"] for e in errs))
        lead = "Input should be "
        if len(msgs) > 1 and all(m.startswith(lead) for m in msgs):
            msg = lead + " or ".join(m[len(lead):] for m in msgs)
        else:
            msg = "; ".join(msgs)
        problems.append(f"{at}: {loc}: {msg}")
    return problems


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def load_config(path: str | Path | None) -> Config:
    """Load and validate a config file; ``None`` gives the defaults."""
    if path is None:
        return default_config()
    p = Path(path)
    name = str(p)
    if not p.exists():
        raise ConfigError(f"{name}: config file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not valid UTF-8 (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    doc = _check_yaml(text, name)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}{pos}: YAML error: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: top level must be a mapping")
    try:
        data = interpolate(data, file=name)
    except ConfigError as exc:  # "FILE: where: ..." -> "FILE:LINE: where: ..."
        where = str(exc)[len(name) + 2:].partition(":")[0]
        raise ConfigError(f"{_at(name, doc, _path(where))}: {str(exc)[len(name) + 2:]}") from None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_problem_lines(name, doc, data, exc.errors()))) from None
    cfg.source_path = name
    _check_references(cfg, name, doc)
    return cfg


def locate(cfg: "Config", message: str) -> str:
    """``message`` (``alerts.destinations.s: slack needs …``, raised after loading) prefixed with
    the config file and the line of the key it names; as it is without a config file."""
    name = cfg.source_path
    if not name:
        return message
    where = message.partition(":")[0]
    if " " in where or "." not in where:
        return f"{name}: {message}"
    try:
        doc = _check_yaml(Path(name).read_text(encoding="utf-8"), name)
    except (OSError, UnicodeDecodeError, ConfigError):
        doc = None
    return f"{_at(name, doc, _path(where))}: {message}"


def _path(where: str) -> tuple[Any, ...]:
    """``sources.files[1].path`` -> ("sources", "files", 1, "path")."""
    out: list[Any] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", where):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def _at(name: str, doc: Any, loc: tuple[Any, ...]) -> str:
    """``FILE:LINE`` of the deepest node of ``loc`` the file has (a missing key: its mapping's
    line), or ``FILE`` when the file has none of it."""
    node, line = doc, None
    for part in loc:
        if node is None:
            break
        nxt = None
        if node.kind == "map":
            for k, v in node.items():
                if k.kind == "scalar" and k.value == str(part):
                    nxt = v
                    line = k.line
                    break
        elif node.kind == "seq" and isinstance(part, int) and 0 <= part < len(node.value):
            nxt = node.value[part]
            line = nxt.line
        node = nxt
        if nxt is None:
            break
    return f"{name}:{line}" if line is not None else name


def _check_yaml(text: str, name: str) -> Any:
    """Hostile-input checks before PyYAML builds anything, with the rule loader's machinery:
    nesting depth, a node limit counting alias expansion (no "billion laughs"), one
    document, no duplicate keys."""
    from .rules.yaml_nodes import YamlSyntaxError, parse_yaml

    try:
        parsed = parse_yaml(text, max_nodes=CONFIG_MAX_NODES)
    except YamlSyntaxError as exc:
        message = exc.message.replace("YAML syntax error", "YAML error", 1)
        raise ConfigError(f"{name}:{exc.line}:{exc.col}: {message}") from None
    if len(parsed.documents) > 1:
        second = parsed.documents[1]
        raise ConfigError(f"{name}:{second.line}:{second.col}: more than one YAML document")
    if parsed.issues:
        raise ConfigError("\n".join(f"{name}:{i.line}:{i.col}: {i.message}" for i in parsed.issues))
    return parsed.documents[0] if parsed.documents else None


def _check_references(cfg: Config, name: str, doc: Any = None) -> None:
    known = cfg.destination_names()
    for i, dest in enumerate(cfg.alerts.default):
        if dest not in known:
            at = _at(name, doc, ("alerts", "default", i))
            raise ConfigError(f"{at}: alerts.default: unknown destination '{dest}'")
    if cfg.alerts.digest and cfg.alerts.digest.destination not in known:
        at = _at(name, doc, ("alerts", "digest", "destination"))
        raise ConfigError(f"{at}: alerts.digest.destination: unknown destination '{cfg.alerts.digest.destination}'")


def resolve_config_path(explicit: str | None) -> str | None:
    """--config, then $CLAIMWATCH_CONFIG, then none (defaults)."""
    return explicit or os.environ.get("CLAIMWATCH_CONFIG") or None
