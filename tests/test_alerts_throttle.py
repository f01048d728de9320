"""Throttling per rule + channel, follow-ups at window end, repost grouping across channels."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from alerts_support import hit_for, message, outbox_rows, slack, slack_text  # noqa: F401

from monitor.alerts.destinations import build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.alerts.policy import OutboxPolicy, text_fingerprint
from monitor.timefmt import ts
from monitor.config import Config

TEXT = "The group claimed responsibility for the attack"


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """One clock for the archive (hit times) and the worker (what is due)."""
    c = Clock()
    monkeypatch.setattr("monitor.archive.store.now_iso", lambda: ts(c.t))
    return c


@pytest.fixture
def throttled(archive):
    archive.policy = OutboxPolicy()  # every archive has it; explicit here
    return archive


def _hit(archive, text=TEXT, *, mid, channel="amaq_example", channel_id="-1001", title="Amaq Example",
         throttle=600, dests=("slack",), rule_id="claims"):
    msg = message(text, mid=mid, channel=channel, channel_id=channel_id, title=title)
    return archive.store([(msg, [hit_for(msg, throttle=throttle, destinations=dests, rule_id=rule_id)])])


def _worker(archive, slack, clock, **dests):
    cfg = Config.model_validate(
        {"alerts": {"destinations": {"slack": {"type": "slack", "webhook_url": slack.webhook_url}, **dests}}}
    )
    return DeliveryWorker(archive, build_destinations(cfg), clock=clock)


def _by_kind(archive, kind):
    return [r for r in outbox_rows(archive) if r["kind"] == kind]


async def test_one_alert_per_window_then_one_n_more_hits_followup(throttled, slack, clock):
    archive = throttled
    worker = _worker(archive, slack, clock)
    try:
        _hit(archive, mid="1")
        assert await worker.deliver_due() == 1
        for i in range(2, 6):
            clock.advance(60)
            result = _hit(archive, f"{TEXT} #{i}", mid=str(i))
            assert result.hits == 1 and result.outbox == 0  # stored, not alerted
            assert await worker.deliver_due() == 0
        assert len(slack.requests) == 1
        [followup] = _by_kind(archive, "followup")
        payload = json.loads(followup["payload"])
        assert payload["count"] == 4 and payload["hit_ids"] == [2, 3, 4, 5]
        assert followup["status"] == "pending"
        assert followup["next_attempt_at"] == "2024-05-01T12:10:00.000000Z"  # window end
        clock.advance(600 - 240)  # the window ends
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0
    finally:
        await worker.aclose()
    assert len(slack.requests) == 2
    sent = slack_text(slack.requests[1])
    assert "*4 more hits* for *Claim of responsibility* in <https://t.me/amaq_example|Amaq Example (@amaq_example)>" in sent
    assert "between 2024-05-01 12:00:00 UTC and 2024-05-01 12:10:00 UTC" in sent
    assert sent.count("<https://t.me/amaq_example/") == 4  # one link per further hit
    assert _by_kind(archive, "followup")[0]["status"] == "sent"


async def test_after_the_window_the_next_hit_alerts_again(throttled, slack, clock):
    archive = throttled
    _hit(archive, mid="1")
    clock.advance(601)
    assert _hit(archive, f"{TEXT} again", mid="2").outbox == 2  # alert + the new window's follow-up
    assert len(_by_kind(archive, "alert")) == 2
    assert len(_by_kind(archive, "followup")) == 2  # one per window


async def test_other_channels_and_other_rules_have_their_own_windows(throttled, clock):
    archive = throttled
    _hit(archive, mid="1")
    _hit(archive, "different text claimed responsibility", mid="2", channel="other_chan", channel_id="-1002")
    _hit(archive, mid="3", rule_id="other-rule")
    assert len(_by_kind(archive, "alert")) == 3


async def test_identical_text_reposted_in_other_channels_is_grouped(throttled, slack, clock):
    archive = throttled
    worker = _worker(archive, slack, clock)
    try:
        _hit(archive, mid="1")
        clock.advance(5)
        # same text after normalisation (case, spacing) in two more channels
        assert _hit(archive, "THE group  claimed\nresponsibility for the attack", mid="7", channel="mirror_one",
                    channel_id="-1002", title="Mirror One").outbox == 0
        assert _hit(archive, TEXT, mid="8", channel="mirror_two", channel_id="-1003", title="Mirror Two").outbox == 0
        assert len(_by_kind(archive, "alert")) == 1
        clock.advance(600)
        assert await worker.deliver_due() == 2
    finally:
        await worker.aclose()
    assert len(slack.requests) == 2
    sent = slack_text(slack.requests[1])
    assert "*2 more hits*" in sent
    assert "*Same text reposted in*" in sent
    assert "<https://t.me/mirror_one|Mirror One (@mirror_one)>: 1" in sent
    assert "<https://t.me/mirror_two|Mirror Two (@mirror_two)>: 1" in sent
    assert "_(same text reposted)_" in sent


async def test_rule_without_throttle_alerts_every_hit_and_every_repost(throttled, clock):
    archive = throttled
    _hit(archive, mid="1", throttle=None)
    _hit(archive, mid="2", channel="mirror", channel_id="-1009", throttle=None)
    _hit(archive, f"{TEXT}!", mid="3", throttle=None)
    assert len(_by_kind(archive, "alert")) == 3
    assert _by_kind(archive, "followup") == []


async def test_window_without_further_hits_is_skipped_not_sent(throttled, slack, clock):
    archive = throttled
    worker = _worker(archive, slack, clock)
    try:
        _hit(archive, mid="1")
        clock.advance(601)
        assert await worker.deliver_due() == 1  # the alert; the follow-up has nothing to say
    finally:
        await worker.aclose()
    assert len(slack.requests) == 1
    assert _by_kind(archive, "followup")[0]["status"] == "skipped"


async def test_one_followup_per_destination_each_counting_the_same_hits(throttled, clock, tmp_path, slack):
    archive = throttled
    log = tmp_path / "alerts.jsonl"
    worker = _worker(archive, slack, clock, log={"type": "file", "path": str(log)})
    try:
        _hit(archive, mid="1", dests=("slack", "log"))
        _hit(archive, f"{TEXT} 2", mid="2", dests=("slack", "log"))
        _hit(archive, f"{TEXT} 3", mid="3", dests=("slack", "log"))
        followups = _by_kind(archive, "followup")
        assert sorted(r["destination"] for r in followups) == ["log", "slack"]
        assert all(json.loads(r["payload"])["count"] == 2 for r in followups)
        clock.advance(600)
        assert await worker.deliver_due() == 4
    finally:
        await worker.aclose()
    recs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["kind"] for r in recs] == ["alert", "followup"]
    assert recs[1]["count"] == 2 and recs[1]["subject"].startswith("[claimwatch][HIGH] 2 more hits: ")


def test_text_fingerprint_uses_the_rules_normalisation():
    assert text_fingerprint("أعلنت  الدولة") == text_fingerprint("اعلنت الدوله")
    assert text_fingerprint("Claimed\u200b Responsibility") == text_fingerprint("claimed responsibility")
    assert text_fingerprint("   ") is None


def test_policy_uses_default_destinations_when_the_hit_has_none(archive):
    archive.policy = OutboxPolicy(default_destinations=("console",))
    msg = message()
    archive.store([(msg, [hit_for(msg, destinations=())])])
    assert [r["destination"] for r in outbox_rows(archive)] == ["console"]


async def test_followup_lists_20_hits_and_counts_every_repost(throttled, slack, clock):
    archive = throttled
    worker = _worker(archive, slack, clock)
    try:
        _hit(archive, mid="0")
        for i in range(1, 26):
            _hit(archive, f"{TEXT} number {i}", mid=str(i))
        for j, chan in enumerate(("m1", "m2", "m2")):  # reposts arrive after the 25 others
            _hit(archive, mid=f"r{j}", channel=f"mirror_{chan}", channel_id=f"-20{chan}", title=None)
        clock.advance(600)
        assert await worker.deliver_due() == 2
    finally:
        await worker.aclose()
    sent = slack_text(slack.requests[1])
    assert "*28 more hits*" in sent
    assert sent.count("<https://t.me/amaq_example/") == 20
    assert "… and 8 more" in sent
    assert "<https://t.me/mirror_m1|@mirror_m1>: 1" in sent and "<https://t.me/mirror_m2|@mirror_m2>: 2" in sent
