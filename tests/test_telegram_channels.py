"""Configured channel references -> what Telethon's get_entity receives."""

from __future__ import annotations

import pytest

from monitor.sources.telegram.channels import ChannelRefError, parse_ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("@amaq_example", "amaq_example"),
        ("amaq_example", "amaq_example"),
        ("https://t.me/some_channel", "some_channel"),
        ("t.me/some_channel/1234", "some_channel"),
        ("https://telegram.me/s/some_channel?before=10", "some_channel"),
        ("https://t.me/+InviteHash_1", "https://t.me/+InviteHash_1"),
        ("https://t.me/joinchat/AbCdEf", "https://t.me/+AbCdEf"),
        ("-1001234567890", -1001234567890),
        ("1234567890", -1001234567890),  # bare channel id, as in Telegram Desktop exports
        ("https://t.me/c/1234567890/45", -1001234567890),
        ("-4242", -4242),  # basic group
        ("  @padded_name ", "padded_name"),
    ],
)
def test_reference_forms(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", "@a", "not a channel!", "https://t.me/", "https://t.me/joinchat/", "https://example.com/x"])
def test_bad_references_name_the_problem(ref):
    with pytest.raises(ChannelRefError):
        parse_ref(ref)
