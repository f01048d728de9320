"""The YAML examples in README.md and docs/*.md load: a config block validates with the config
model (the README's complete example with `load_config`, references checked), a rule, a rule
file, an actor file, a classifier file (with the shipped model) or a `match:` fragment loads with the rule loader (next to the shipped
actors and the docs' own list examples). A doc example that no longer loads is a bug."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monitor.config import Config, load_config
from monitor.rules.loader import load_rules
from monitor.rules.problems import RuleSetError

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIG_KEYS = set(Config.model_fields) - {"source_path"}
LIST_HEADER = re.compile(r"^#\s*rules/lists/([\w.-]+\.(?:csv|txt))")


def blocks(language: str) -> list[tuple[str, str]]:
    """(file:line, text) of every fenced ``language`` block."""
    out = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        start = None
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if start is None and stripped == f"```{language}":
                start, body = number, []
            elif start is not None and stripped.startswith("```"):
                out.append((f"{path.relative_to(ROOT)}:{start}", "\n".join(body)))
                start = None
            elif start is not None:
                body.append(line)
    return out


YAML_BLOCKS = blocks("yaml")
ENV = {name: "12345" if name.endswith("_ID") else "doc-example" for _, text in YAML_BLOCKS for name in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text)}


def kind(data: object) -> str:
    if not isinstance(data, dict):
        return "other"
    keys = set(data)
    if "actors" in keys:
        return "actors"
    if "classifier" in keys:
        return "classifier"
    if "rules" in keys and isinstance(data["rules"], list):
        return "rule file"
    if "id" in keys or keys == {"match"}:
        return "rule"
    if keys <= CONFIG_KEYS:
        return "config"
    return "other"


def test_the_docs_have_yaml_examples_of_each_kind() -> None:
    kinds = {kind(yaml.safe_load(text)) for _, text in YAML_BLOCKS}
    assert {"config", "rule", "rule file", "actors"} <= kinds


@pytest.mark.parametrize(("where", "text"), YAML_BLOCKS, ids=[w for w, _ in YAML_BLOCKS])
def test_documented_yaml_loads(where: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    data = yaml.safe_load(text)
    what = kind(data)
    assert what != "other", f"{where}: a YAML example of no known kind (config, rule, actors, classifier)"
    if what == "config":
        if where.startswith("README.md"):  # the complete example: references checked too
            config = tmp_path / "claimwatch.yaml"
            config.write_text(text, encoding="utf-8")
            load_config(config)
        else:
            Config.model_validate(_interpolated(data))
        return
    rules = tmp_path / "rules"
    (rules / "lists").mkdir(parents=True)
    if what == "rule" and set(data) == {"match"}:
        data = {"id": "doc-fragment", **data, "condition": " or ".join(data["match"])}
    if what != "actors":
        (rules / "actors.yml").write_bytes((ROOT / "rules" / "actors.yml").read_bytes())
    for _, csv_text in blocks("csv"):
        header = LIST_HEADER.match(csv_text)
        if header:
            (rules / "lists" / header.group(1)).write_text(csv_text, encoding="utf-8")
    if what == "classifier":  # its model beside it: the shipped one
        (rules / data["classifier"]["model"]).write_bytes((ROOT / "rules" / "classifier.npz").read_bytes())
    (rules / "example.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        loaded = load_rules([rules], known_destinations=None)
    except RuleSetError as exc:
        pytest.fail(f"{where}: {exc}")
    if what in ("rule", "rule file"):
        assert loaded.rules, f"{where}: no rule loaded"
    if what == "classifier":
        assert loaded.classifier is not None, f"{where}: no classifier loaded"


def _interpolated(data: object) -> object:
    from monitor.config import interpolate

    return interpolate(data, file="doc")
