"""``claimwatch alerts``, ``alerts retry`` and ``alerts test`` through the real CLI."""

from __future__ import annotations

import json

import pytest
from alerts_support import hit_for, message, outbox_rows, slack, slack_text, smtp  # noqa: F401
from typer.testing import CliRunner

from monitor.archive import Archive
from monitor.cli import app

runner = CliRunner()


@pytest.fixture
def db_with_rows(db_path):
    """Three alert rows: 1 sent, 1 failed (with a reason), 1 pending."""
    with Archive.open(db_path) as archive:
        for i in range(3):
            msg = message(f"claimed responsibility {i}", mid=str(i))
            archive.store([(msg, [hit_for(msg)])])
        archive.conn.execute("UPDATE outbox SET status='sent', sent_at='2024-05-01T12:00:01.000000Z' WHERE id=1")
        archive.conn.execute("UPDATE outbox SET status='failed', attempts=1, last_error='Slack webhook HTTP 404: no_service' WHERE id=2")
    return db_path


def test_alerts_lists_recent_deliveries_and_failures(db_with_rows):
    r = runner.invoke(app, ["alerts", "--db", str(db_with_rows)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "outbox: pending 1, sent 1, failed 1" in r.output
    assert "Slack webhook HTTP 404: no_service" in r.output
    r = runner.invoke(app, ["alerts", "--db", str(db_with_rows), "--status", "failed", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["id"], x["status"], x["rule_id"]) for x in rows] == [(2, "failed", "claims")]
    r = runner.invoke(app, ["alerts", "--db", str(db_with_rows), "--limit", "1", "--json"])
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == [3]


def test_alerts_errors_exit_2(db_with_rows, tmp_path):
    r = runner.invoke(app, ["alerts", "--db", str(db_with_rows), "--status", "lost"])
    assert r.exit_code == 2 and "unknown status 'lost'" in r.output
    r = runner.invoke(app, ["alerts", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "archive not found" in r.output


def test_alerts_hostile_channel_names_are_not_rich_markup(db_path):
    with Archive.open(db_path) as archive:
        msg = message("claimed responsibility", channel=None, title="[bold red]FAKE[/]\u202eR \x1b[31m")
        archive.store([(msg, [hit_for(msg)])])
    r = runner.invoke(app, ["alerts", "--db", str(db_path)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "[bold red]FAKE[/]" in r.output and "\x1b[31m" not in r.output
    assert "\u202e" not in r.output and "[bold red]FAKE[/]\ufffdR" in r.output


def test_alerts_retry_requeues_failed_rows(db_with_rows):
    r = runner.invoke(app, ["alerts", "retry", "1", "--db", str(db_with_rows)])
    assert r.exit_code == 0
    assert "outbox row 1 is sent, not failed: left as it is" in r.output
    assert "re-queued 0 failed deliveries" in r.output
    r = runner.invoke(app, ["alerts", "retry", "--db", str(db_with_rows)])
    assert r.exit_code == 0 and "re-queued 1 failed delivery" in r.output
    with Archive.open(db_with_rows) as archive:
        rows = outbox_rows(archive)
    assert [x["status"] for x in rows] == ["sent", "pending", "pending"]
    assert rows[1]["attempts"] == 0


def test_alerts_test_sends_a_sample_to_slack(tmp_path, slack, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    cfg = tmp_path / "c.yaml"
    cfg.write_text('alerts:\n  destinations:\n    slack-ops: {type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}\n')
    r = runner.invoke(app, ["alerts", "test", "slack-ops", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "ok: test alert sent to slack-ops (slack)" in r.output
    [req] = slack.requests
    sent = slack_text(req)
    assert "*claimwatch test alert for slack-ops* _(test)_" in sent
    assert "&lt;!channel&gt;" in sent and "<!channel>" not in sent


def test_alerts_test_reports_failure_with_reason_and_no_secret(tmp_path, slack, monkeypatch):
    slack.respond((404, {}, "no_service: /services/T000/B000/XXXXSECRETXXXX"))
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    cfg = tmp_path / "c.yaml"
    cfg.write_text('alerts:\n  destinations:\n    slack-ops: {type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}\n')
    r = runner.invoke(app, ["alerts", "test", "slack-ops", "--config", str(cfg), "--log-level", "DEBUG"])
    assert r.exit_code == 1
    assert "failed: slack-ops (slack): Slack webhook HTTP 404: no_service: ***" in " ".join(r.output.split())
    assert "XXXXSECRETXXXX" not in r.output
    r = runner.invoke(app, ["alerts", "test", "slack-ops", "--config", str(cfg), "--json"])  # now it works
    assert r.exit_code == 0
    result = json.loads(r.stdout.splitlines()[-1])
    assert result == {"destination": "slack-ops", "type": "slack", "ok": True, "error": None, "temporary": None}


def test_alerts_test_email_and_unknown_destination(tmp_path, smtp):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "alerts:\n  destinations:\n    mail:\n      type: email\n      host: 127.0.0.1\n"
        f"      port: {smtp.port}\n      security: none\n      from: alerts@example.org\n      to: [desk@example.org]\n"
    )
    r = runner.invoke(app, ["alerts", "test", "mail", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    [mail] = smtp.wait_for(1)
    assert mail["msg"]["Subject"].startswith("[claimwatch][TEST] claimwatch test alert for mail · ")
    r = runner.invoke(app, ["alerts", "test", "nope", "--config", str(cfg)])
    assert r.exit_code == 2 and "unknown destination 'nope' (configured: console, mail)" in r.output


def test_alerts_test_temporary_failure_is_reported_as_such(tmp_path, slack):
    slack.respond((503, {}, "down"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"alerts:\n  destinations:\n    s: {{type: webhook, url: 'http://127.0.0.1:{slack.port}/x'}}\n")
    r = runner.invoke(app, ["alerts", "test", "s", "--config", str(cfg), "--json"])
    assert r.exit_code == 1
    result = json.loads(r.stdout.splitlines()[-1])
    assert result == {"destination": "s", "type": "webhook", "ok": False, "error": "webhook HTTP 503: down", "temporary": True}
    slack.respond((503, {}, "down"))
    r = runner.invoke(app, ["alerts", "test", "s", "--config", str(cfg)], env={"COLUMNS": "200"})
    assert r.exit_code == 1
    # one space after the destination (print's separator after a trailing space made two)
    assert "temporary failure (would be retried): s (webhook): webhook HTTP 503: down" in r.output


def test_alerts_table_keeps_ids_whole_on_a_narrow_console(db_with_rows):
    # `alerts retry IDS` takes these ids: at 80 columns they were cut to "1…".
    with Archive.open(db_with_rows) as archive:
        archive.conn.execute("UPDATE outbox SET id = id + 123450, destination = 'slack-analysts-' || destination")
        archive.conn.execute("UPDATE hits SET rule_id = 'statement-condemn-fa-long-rule-id'")
    for width in (80, 100):
        r = runner.invoke(app, ["alerts", "--db", str(db_with_rows)], env={"COLUMNS": str(width)})
        assert r.exit_code == 0, r.output
        lines = r.output.splitlines()
        assert all(len(line) <= width for line in lines), r.output
        for oid in (123451, 123452, 123453):
            assert any(line.split()[:1] == [str(oid)] for line in lines), r.output
        assert "failed" in r.output and "pending" in r.output and "sent" in r.output, r.output
