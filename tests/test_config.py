"""Configuration loading: defaults, ${ENV} interpolation, errors naming file/key/line,
the example config documenting every key, and the CLI's exit code 2 on a bad config."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_no_file_gives_working_defaults() -> None:
    cfg = load_config(None)
    assert cfg.database == "data/claimwatch.db" and cfg.rules == "rules/"
    assert cfg.alerts.default == ["console"] and "console" in cfg.destination_names()


def test_env_interpolation_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_TEST_HOOK", "http://127.0.0.1:9/hook-secret-xyz")
    cfg = load_config(
        write(
            tmp_path,
            "database: ${CW_TEST_DB:-data/x.db}\n"
            "alerts:\n  default: [s]\n  destinations:\n    s: {type: slack, webhook_url: '${CW_TEST_HOOK}'}\n",
        )
    )
    assert cfg.database == "data/x.db"
    hook = cfg.alerts.destinations["s"].webhook_url
    assert hook.get_secret_value() == "http://127.0.0.1:9/hook-secret-xyz"
    assert "hook-secret-xyz" not in repr(cfg)  # secrets are not shown in reprs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the line of the key named (a missing key: its mapping's line)
        ("databse: x.db\n", "cfg.yaml:1: unknown key 'databse'"),
        ("sources:\n  files:\n    - {path: a}\n    - {path: a, folow: true}\n",
         "cfg.yaml:4: unknown key 'sources.files[1].folow'"),
        ("alerts:\n  destinations:\n    s: {type: slack, webhook_url: '${CW_UNSET_VAR}'}\n",
         "cfg.yaml:3: alerts.destinations.s.webhook_url: environment variable CW_UNSET_VAR is not set"),
        ("# alerts\nalerts:\n  default:\n    - console\n    - nowhere\n",
         "cfg.yaml:5: alerts.default: unknown destination 'nowhere'"),
        ("\n\nsources:\n  telegram:\n    api_id: abc\n", "cfg.yaml:5: sources.telegram.api_id: Input should be"),
        ("database: [unclosed\n", "cfg.yaml:2:1: YAML error"),
        ("- just a list\n", "top level must be a mapping"),
        ("sources:\n  x: {interval: soon}\n", "sources.x.interval"),
        ("alerts:\n  destinations:\n    e: {type: email, host: h, to: [a@b]}\n", "alerts.destinations.e.from: Field required"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value)
    assert str(tmp_path / "cfg.yaml") in str(err.value)


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        # pydantic's schema tags were in the path: "alerts.destinations.s.slack.webhook_url",
        # "sources.telegram.backfill.str" and ".int" (two lines for one value)
        ("alerts:\n  destinations:\n    s:\n      type: slack\n      webhook_url: [1]\n",
         ["cfg.yaml:5: alerts.destinations.s.webhook_url: Input should be a valid string"]),
        ("alerts:\n  destinations:\n    s: {type: slack, webhok_url: x}\n",
         ["cfg.yaml:3: unknown key 'alerts.destinations.s.webhok_url'"]),
        ("alerts:\n  destinations:\n    e:\n      type: email\n      host: h\n      to: [a@b]\n      port: x\n",
         ["cfg.yaml:7: alerts.destinations.e.port: Input should be a valid integer, unable to parse string as an integer",
          "cfg.yaml:3: alerts.destinations.e.from: Field required"]),
        ("sources:\n  telegram:\n    backfill: [3d]\n",
         ["cfg.yaml:3: sources.telegram.backfill: Input should be a valid string or a valid integer"]),
        ("alerts:\n  destinations:\n    w: {type: webhook, url: x, headers: {X-Key: [1]}}\n",
         ["cfg.yaml:3: alerts.destinations.w.headers.X-Key: Input should be a valid string"]),
    ],
)
def test_config_errors_show_the_path_written_in_the_file(tmp_path: Path, text: str, lines: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert str(err.value).splitlines() == [f"{tmp_path}/{line}" for line in lines]


def test_schema_tags_are_left_out_of_a_location() -> None:
    from monitor.config import _user_loc

    data = {"bus": {"spool": {"max_bytes": "lots"}}, "alerts": {"destinations": {"s": {"type": "slack"}}}}
    assert _user_loc(data, ("bus", "spool", "function-after[_size(), int]", "max_bytes")) == ("bus", "spool", "max_bytes")
    assert _user_loc(data, ("bus", "spool", "max_bytes", "function-before[_size(), int]")) == ("bus", "spool", "max_bytes")
    assert _user_loc(data, ("alerts", "destinations", "s", "SlackDestination", "token")) == (
        "alerts", "destinations", "s", "token")
    assert _user_loc(data, ("alerts", "destinations", "s", "channel")) == ("alerts", "destinations", "s", "channel")


def test_cli_prints_each_config_problem_as_its_own_error_line(tmp_path: Path) -> None:
    # two problems were "error: FILE: database: …" and a second line without "error:"
    res = CliRunner().invoke(app, ["stats", "--config", str(write(tmp_path, "database: 5\nfoo: 1\n"))])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    cfg = tmp_path / "cfg.yaml"
    assert lines == [f"error: {cfg}:1: database: Input should be a valid string", f"error: {cfg}:2: unknown key 'foo'"]


def test_run_names_the_line_of_a_destination_it_cannot_build(tmp_path: Path) -> None:
    cfg = write(tmp_path, f"database: {tmp_path / 'a.db'}\nalerts:\n  default: [s]\n  destinations:\n"
                          "    s: {type: slack}\n")
    res = CliRunner().invoke(app, ["run", "--once", "--config", str(cfg), "--log-level", "ERROR"])
    assert res.exit_code == 2
    assert res.output.strip() == (f"error: cannot start: {cfg}:5: alerts.destinations.s: slack needs 'webhook_url',"
                                  " or 'token' and 'channel'")
    assert not (tmp_path / "a.db").exists()


def test_run_names_the_line_of_a_source_or_templates_setting_it_cannot_use(tmp_path: Path) -> None:
    # "error: cannot start: sources.telegram: api_id and api_hash are required", naming no file
    cfg = write(tmp_path, f"database: {tmp_path / 'a.db'}\nsources:\n  telegram:\n    channels: ['@a']\n")
    res = CliRunner().invoke(app, ["run", "--once", "--config", str(cfg), "--log-level", "ERROR"])
    assert res.exit_code == 2
    assert res.output.startswith(f"error: cannot start: {cfg}:3: sources.telegram: api_id and api_hash are required")
    assert len(res.output.strip().splitlines()) == 1
    cfg = write(tmp_path, f"database: {tmp_path / 'a.db'}\nalerts:\n  templates: {tmp_path / 'none'}\n")
    res = CliRunner().invoke(app, ["run", "--once", "--config", str(cfg), "--log-level", "ERROR"])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: cannot start: {cfg}:3: alerts.templates: {tmp_path / 'none'}: not a folder"
    assert not (tmp_path / "a.db").exists()


def test_non_utf8_config(tmp_path: Path) -> None:
    p = tmp_path / "cfg.yaml"
    p.write_bytes(b"database: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(p)


def test_example_config_documents_every_section_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TG_API_ID", "TG_API_HASH", "X_BEARER_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    cfg = load_config(ROOT / "config" / "claimwatch.example.yaml")
    assert cfg.sources.files and cfg.sources.telegram is not None and cfg.sources.x is not None
    assert cfg.sources.x.interval == 120.0 and cfg.sources.telegram.gapfill_interval == 300.0
    text = (ROOT / "config" / "claimwatch.example.yaml").read_text(encoding="utf-8")
    # Every top-level key of the model appears in the example (incidents and bus were missing).
    from monitor.config import Config

    for key in Config.model_fields:
        if key != "source_path":
            assert f"\n{key}:" in text or f"\n# {key}:" in text, key
    assert cfg.incidents.window == 72 * 3600.0 and cfg.bus is None
    demo = load_config(ROOT / "config" / "demo.yaml")
    assert demo.alerts.default == ["console", "demo-log"]


def test_cli_reports_bad_config_with_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["stats", "--config", str(write(tmp_path, "colour: blue\n"))])
    assert res.exit_code == 2
    assert "unknown key 'colour'" in res.output


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMWATCH_CONFIG", str(write(tmp_path, "colour: blue\n")))
    res = CliRunner().invoke(app, ["stats"])
    assert res.exit_code == 2 and "colour" in res.output


def test_yaml_bomb_in_config_is_refused_by_the_node_limit(tmp_path: Path) -> None:
    # Nested anchors: 10^6 nodes once the aliases are expanded (a real config has hundreds).
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 7):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    p = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:") and "100,000 nodes" in msg and "\n" not in msg


def test_duplicate_keys_in_config_are_rejected_with_their_line(tmp_path: Path) -> None:
    p = write(tmp_path, "database: a.db\nrules: rules/\ndatabase: b.db\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"{p}:3:1: duplicate key 'database' (first at line 1)"
    nested = write(tmp_path, "alerts:\n  default: [console]\n  default: [log]\n")
    with pytest.raises(ConfigError, match=r":3:3: duplicate key 'default'"):
        load_config(nested)


def test_cli_reports_config_bomb_in_one_line_exit_2(tmp_path: Path) -> None:
    lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
    for i in range(1, 7):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    p = write(tmp_path, "\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["stats", "--config", str(p), "--db", str(tmp_path / "x.db")])
    assert r.exit_code == 2 and "nodes" in r.output and "Traceback" not in r.output
