"""monitor/sources/files/fastjson.py: orjson where it gives the json module's very result, the
json module elsewhere; the followed-files source and the bus codec read JSON through it."""

from __future__ import annotations

import json
import random

from monitor.sources.files import fastjson

CASES = [
    b'{"a":1,"b":[1.5,-0,-0.0,1e5,1E-5,true,false,null],"a":3}',  # duplicate key: the last wins, first place
    b'{"big":123456789012345678901234567890}', b'{"neg":-9223372036854775809}', b'[18446744073709551616]',
    b'{"u64":18446744073709551615,"i64":-9223372036854775808}', b'{"f":1234567890123456789.5}',
    b'{"id":"1234567890123456789","t":"x 12345678901234567890"}',  # digits inside strings
    b'{"x":1e400}', b'{"x":NaN}', b'[Infinity,-Infinity]', b'"\\ud800"', b'"\\udc00x"', b'"\xed\xa0\x80"',
    b'"\\ud83d\\ude00"', b'\xef\xbb\xbf{"a":1}', '{"é":"ا"}'.encode(), b'{"a":"\\u0000"}',
    b'{"a":1} x', b'[1,]', b'{"a":01}', b'"\xff"', b'"a\x01b"', b'{"a":tru}',
]


def result(fn, text):  # noqa: ANN001, ANN202
    try:
        value = fn(text)
    except ValueError as exc:
        return "error", type(exc).__name__
    return "ok", repr(value), json.dumps(value)  # repr shows int vs float, key order, -0.0


def test_same_results_and_errors_as_the_json_module() -> None:
    for text in CASES:
        assert result(fastjson.loads, text) == result(json.loads, text), text
        try:
            as_str = text.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert result(fastjson.loads, as_str) == result(json.loads, as_str), as_str


def test_same_results_on_random_documents() -> None:
    rnd = random.Random(5)
    atoms = [c for c in CASES if not c.startswith(b"{")] + [b"0", b"-1", b"2.5", b'"s"', b"12345678901234567890",
                                                             b"-12345678901234567890", b"1e1234567890123456789"]

    def gen(depth: int = 0) -> bytes:
        r = rnd.random()
        if depth > 3 or r < 0.4:
            return rnd.choice(atoms)
        if r < 0.7:
            return b"[" + b",".join(gen(depth + 1) for _ in range(rnd.randint(0, 4))) + b"]"
        keys = [b'"a"', b'"b"', b'"\\u0061"', '"é"'.encode()]
        return b"{" + b",".join(rnd.choice(keys) + b" : " + gen(depth + 1) for _ in range(rnd.randint(0, 4))) + b"}"

    for _ in range(20_000):
        text = gen()
        assert result(fastjson.loads, text) == result(json.loads, text), text


def test_orjson_reads_what_it_can_and_says_so() -> None:
    assert fastjson.loads_checked(b'{"a":[1,2.5,"x"]}') == ({"a": [1, 2.5, "x"]}, True)
    assert fastjson.loads_checked(b'{"a":"\\ud800"}') == ({"a": "\ud800"}, False)  # a lone surrogate
    assert fastjson.loads_checked(b'{"a":12345678901234567890123}') == ({"a": 12345678901234567890123}, False)
    assert fastjson.loads_checked(b'{"id":"12345678901234567890123"}')[1] is True  # digits in a string
    assert fastjson.may_have_big_int(b"[1,\n -1234567890123456789]")
    assert not fastjson.may_have_big_int(b'{"a":"x1234567890123456789","b":1.1234567890123456789}')


async def test_followed_lines_read_as_the_importer_reads_them(tmp_path, archive) -> None:  # noqa: ANN001
    """Lines with a lone surrogate (scrubbed), a valid pair, a 70-bit integer and NaN: the
    followed-files source (orjson where it can) makes the very Messages the importer (the json
    module) makes."""
    from monitor.config import FileSourceConfig
    from monitor.sources.base import SourceContext
    from monitor.sources.files import read_messages
    from monitor.sources.files.source import FilesSource

    base = '{"schema":"claimwatch.message/1","platform":"x","channel_id":"7","date":"2024-01-03T00:00:00Z",'
    lines = [
        base + '"message_id":"1","text":"cut \\ud83d","raw":{"t":"cut \\ud83d"}}',
        base + '"message_id":"2","text":"pair \\ud83d\\ude00","raw":{"n":1180591620717411303425}}',
        base + '"message_id":"3","text":"plain","raw":{"v":NaN,"id":"1234567890123456789"}}',
        base + '"message_id":"4","text":"\u0627\u0644\u062f\u0648\u0644\u0629","raw":{"neg":-18446744073709551619}}',
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = []

    async def emit(env) -> None:  # noqa: ANN001
        got.append(env.event)

    await FilesSource([FileSourceConfig(path=str(f), follow=True)]).run(SourceContext(archive, emit), once=True)
    imported = list(read_messages(f, fmt="canonical"))
    assert [m.to_dict() for m in got] == [m.to_dict() for m in imported]
    assert [repr(m.raw) for m in got] == [repr(m.raw) for m in imported]
    assert got[0].text == "cut \ufffd" and got[1].text == "pair \U0001f600"
    assert type(got[1].raw["n"]) is int and got[1].raw["n"] == 2**70 + 1
