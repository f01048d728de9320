"""The rule pack's learned classifier (monitor/rules/classifier*.py, monitor/rules/_features.c):
features (C against the Python reference on the whole corpus), the model file (written,
read, refused when bad), the scorer against scikit-learn on the same hashed features, the
matcher's classifier hit, the compiled-set cache, training's determinism and the CLI.

Models are trained on real corpus items (a few hundred of corpus/*.jsonl) into tmp folders."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.rules import Matcher, RuleSetError, load_rules
from monitor.rules import classifier as C
from monitor.rules.cache import load_matcher, source_key
from monitor.rules.evaluate import evaluate, read_corpus
from monitor.text import normalize
from tests.rules_helpers import cache, msg, write  # noqa: F401 - fixture

sklearn = pytest.importorskip("sklearn")
from monitor.rules import classifier_train as T  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
runner = CliRunner()

needs_c = pytest.mark.skipif(C._c_extract is None and os.environ.get("CI") != "true",
                             reason="the C extension monitor/rules/_features.c is not built")

RULE = """\
id: claim-en
level: high
kind: claim
match:
  c: ["claimed responsibility"]
"""


def _items(n_per_label: int = 40) -> list:
    """A small balanced training set of real dev items (all three languages)."""
    got: dict[str, list] = {}
    for it in read_corpus([CORPUS], "dev"):
        bucket = got.setdefault(it.label, [])
        if len(bucket) < n_per_label:
            bucket.append(it)
    return [it for label in sorted(got) for it in got[label]]


@pytest.fixture(scope="module")
def small() -> tuple[list, T.Fitted]:
    items = _items()
    return items, T.fit([it.text for it in items], [it.label for it in items])


def _pack(tmp: Path, fitted: T.Fitted, items: list, yml: str | None = None, thresholds: dict | None = None) -> Path:
    """A rule folder: one rule, a classifier file and its model."""
    rules = tmp / "pack"
    write(rules / "claim.yml", RULE)
    arrays = T.model_arrays(fitted, thresholds or {"claim": 0.0, "statement": 0.0}, C.corpus_digest(items), "dev", {})
    C.save_model(rules / "classifier.npz", arrays)
    write(rules / "classifier.yml", yml or """\
        classifier:
          id: classifier
          title: Learned classifier
          level: medium
          model: classifier.npz
          kinds: [claim, statement]
        """)
    return rules


# -- features ----------------------------------------------------------------------------------
def test_python_features_follow_the_definition() -> None:
    idx, cnt, n_char = C.python_extract("ab cd", 20, 20)
    idx = np.frombuffer(idx, dtype=np.uint32).tolist()
    cnt = np.frombuffer(cnt, dtype=np.uint32).tolist()

    def h(prefix: bytes, s: str) -> int:
        x = 0xCBF29CE484222325
        for b in prefix + s.encode():
            x = ((x ^ b) * 0x100000001B3) % 2**64
        return (x ^ (x >> 32)) & (2**20 - 1)

    # " ab ": " a", "ab", "b ", " ab", "ab ", " ab " (and the same for cd): 12 character n-grams
    grams = [" a", " ab", " ab ", "ab", "ab ", "b ", " c", " cd", " cd ", "cd", "cd ", "d "]
    assert n_char == 12 and sorted(idx[:n_char]) == sorted(h(b"c", g) for g in grams)
    words = [2**20 + h(b"w", w) for w in ("ab", "cd", "ab cd")]
    assert sorted(idx[n_char:]) == sorted(words) and cnt == [1] * 15
    # counts: a repeated word counts twice; '_' and punctuation separate words
    idx2, cnt2, _ = C.python_extract("x_x!", 20, 20)
    counts = dict(zip(np.frombuffer(idx2, dtype=np.uint32).tolist(), np.frombuffer(cnt2, dtype=np.uint32).tolist()))
    assert counts[2**20 + h(b"w", "x")] == 2 and counts[2**20 + h(b"w", "x x")] == 1


@needs_c
def test_c_features_equal_python_on_the_whole_corpus() -> None:
    assert C._c_extract is not None, "make install did not build monitor/rules/_features.c"
    items = read_corpus([CORPUS])
    assert len(items) > 4000
    for it in items:
        t = normalize(it.text)
        assert C._c_extract(t, 20, 20) == C.python_extract(t, 20, 20), it.id
    for t in ("", " ", "a", "\U0001f600 x\U0001f600y", "\ud800 lone", "a\u200cb  c\td\n", "x" * 3000, "١٢ فی‌الله"):
        for bits in ((20, 20), (3, 5), (1, 1)):
            assert C._c_extract(t, *bits) == C.python_extract(t, *bits), (t, bits)


@needs_c
def test_c_score_equals_the_numpy_scorer(tmp_path: Path, small) -> None:
    assert C._c_score is not None
    items, fitted = small
    C.save_model(tmp_path / "m.npz", T.model_arrays(fitted, {}, C.corpus_digest(items), "dev", {}))
    model = C.load_model(tmp_path / "m.npz")
    for it in read_corpus([CORPUS])[::7] + [read_corpus([CORPUS])[0]]:
        np.testing.assert_allclose(model.proba(it.text), model.proba_features(*C.features(it.text)), atol=1e-12)
    for t in ("", "!!!", "x" * 5000):
        np.testing.assert_allclose(model.proba(t), model.proba_features(*C.features(t)), atol=1e-12)
    with pytest.raises(ValueError, match="sizes"):
        C._c_score("x", 20, 20, np.zeros(5, dtype=np.int32), model.weights, len(model.classes))


# -- the scorer against scikit-learn -----------------------------------------------------------
def test_scorer_equals_scikit_learn_on_the_same_hashed_features(tmp_path: Path, small) -> None:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    items, fitted = small
    arrays = T.model_arrays(fitted, {"claim": 0.5}, C.corpus_digest(items), "dev", {})
    path = tmp_path / "m.npz"
    C.save_model(path, arrays)
    model = C.load_model(path)
    # the reference: the same hashed counts, scikit-learn's TF-IDF per block and its logistic regression
    train_counts = T.count_matrix([it.text for it in items])
    index = np.flatnonzero(np.diff(train_counts.tocsc().indptr))
    wbase = 2**20
    nchar = int(np.searchsorted(index, wbase))
    blocks = [(0, nchar), (nchar, len(index))]
    trs = [TfidfTransformer(sublinear_tf=True).fit(train_counts[:, index][:, a:b]) for a, b in blocks]

    def x_of(counts):
        sub = counts[:, index]
        return hstack([tr.transform(sub[:, a:b]) for tr, (a, b) in zip(trs, blocks)], format="csr")

    lr = LogisticRegression(C=10.0, class_weight="balanced", max_iter=3000).fit(x_of(train_counts), [it.label for it in items])
    others = [it for it in read_corpus([CORPUS], "test")][:150]
    texts = [it.text for it in others] + ["", "!!!", "claimed responsibility"]
    want = lr.predict_proba(x_of(T.count_matrix(texts)))
    got = model.proba_many(texts)
    order = [model.classes.index(c) for c in lr.classes_]
    assert model.classes == tuple(lr.classes_)
    np.testing.assert_allclose(got[:, order], want, atol=1e-5)
    assert np.allclose(got.sum(axis=1), 1.0)


def test_training_is_deterministic(tmp_path: Path) -> None:
    items = _items(25)
    a = T.fit([it.text for it in items], [it.label for it in items])
    b = T.fit([it.text for it in items], [it.label for it in items])
    da = C.save_model(tmp_path / "a.npz", T.model_arrays(a, {"claim": 0.6}, C.corpus_digest(items), "dev", {}))
    db = C.save_model(tmp_path / "b.npz", T.model_arrays(b, {"claim": 0.6}, C.corpus_digest(items), "dev", {}))
    assert da == db and (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_train_chooses_thresholds_on_dev_b_and_writes_the_model(tmp_path: Path) -> None:
    items = _items(30)
    matcher = Matcher(load_rules([write(tmp_path / "r" / "claim.yml", RULE)]))
    got = T.train(items, tmp_path / "m.npz", rules_matcher=matcher)
    model = C.load_model(tmp_path / "m.npz")
    assert model.digest == got.digest and model.corpus_digest == C.corpus_digest(items)
    assert set(got.choice.thresholds) == {"claim", "statement"}
    assert model.thresholds == pytest.approx(got.choice.thresholds)
    rules_p = got.choice.rules["precision"] or 0.0
    assert got.choice.combined["precision"] >= rules_p - T.MARGIN - 1e-9 or got.choice.thresholds["claim"] == C.NEVER
    assert got.dev_a + got.dev_b == len(items) and model.trained_items == len(items)


def test_choose_thresholds_keeps_precision() -> None:
    class It:
        def __init__(self, label: str) -> None:
            self.label = label

    items = [It("claim")] * 4 + [It("none")] * 4
    classes = ("claim", "none", "statement")
    proba = np.array([[0.9, 0.1, 0], [0.7, 0.3, 0], [0.4, 0.6, 0], [0.2, 0.8, 0],
                      [0.8, 0.2, 0], [0.1, 0.9, 0], [0.1, 0.9, 0], [0.1, 0.9, 0]])
    rules = [[("claim", "high")], [], [], [], [], [], [], []]
    ch = T.choose_thresholds(items, proba, classes, rules, margin=0.0)
    # rules alone: precision 1.0; item 2 (claim, 0.7) comes only with item 5 (none, 0.8): not at margin 0
    assert ch.rules["precision"] == 1.0 and ch.combined["precision"] == 1.0
    assert ch.combined["recall"] == 0.25 and ch.thresholds["claim"] > 0.8
    ch = T.choose_thresholds(items, proba, classes, rules, margin=0.4)  # 2 of 3 alerts true: within 0.4
    assert ch.combined["recall"] == 0.5 and ch.thresholds["claim"] <= 0.7 and ch.combined["precision"] == pytest.approx(2 / 3)


# -- the model file ----------------------------------------------------------------------------
def _zip(arrays: dict, raw: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, a in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(a), allow_pickle=True)
            zf.writestr(name + ".npy", member.getvalue())
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("change, field, words", [
    (lambda a: a.pop("coef"), "coef", "missing"),
    (lambda a: a.update(coef=a["coef"][:, :2]), "coef", "has shape"),
    (lambda a: a.update(idf=a["idf"].astype(np.int32)), "idf", "dtype"),
    (lambda a: a.update(index=a["index"][::-1].copy()), "index", "ascending"),
    (lambda a: a.update(format=np.array(9, dtype=np.int32)), "format", "format 9"),
    (lambda a: a.update(features=np.array(2, dtype=np.int32)), "features", "feature version 2"),
    (lambda a: a.update(classes=np.array(["claim", "maybe", "none", "report", "statement"])), "classes", "distinct"),
    (lambda a: a.update(thresholds=np.array([0.5, 3.0, np.nan, 0.5, 0.5], dtype=np.float32)), "thresholds", "probability"),
    (lambda a: a.update(corpus_digest=np.array("abc")), "corpus_digest", "sha256"),
    (lambda a: a.update(params=np.array([{"x": 1}], dtype=object)), "params", "cannot be read"),
    (lambda a: a.update(intercept=np.array([np.inf, 0, 0, 0, 0], dtype=np.float32)), "intercept", "finite"),
])
def test_bad_model_files_are_refused_naming_the_field(tmp_path: Path, small, change, field, words) -> None:
    items, fitted = small
    arrays = dict(T.model_arrays(fitted, {"claim": 0.5}, C.corpus_digest(items), "dev", {}))
    change(arrays)
    path = tmp_path / "bad.npz"
    path.write_bytes(_zip(arrays))
    with pytest.raises(C.ModelError) as err:
        C.load_model(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: field '{field}': ") and words in text


def test_a_model_that_is_not_a_zip_or_absent(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(C.ModelError, match=r"x.npz: not a model file"):
        C.load_model(tmp_path / "x.npz")
    with pytest.raises(C.ModelError, match=r"y.npz: no such model file"):
        C.load_model(tmp_path / "y.npz")


def test_the_loader_reports_a_bad_model_and_bad_yaml_as_problems(tmp_path: Path, small) -> None:
    items, fitted = small
    rules = _pack(tmp_path, fitted, items)
    (rules / "classifier.npz").write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(RuleSetError) as err:
        load_rules([rules])
    (p,) = err.value.problems
    assert p.file.endswith("classifier.yml") and "model:" in p.message and "classifier.npz" in p.message
    write(rules / "classifier.yml", """\
        classifier:
          model: ../elsewhere.npz
          kinds: [claim, denail]
          levle: high
          thresholds: {claim: 1.5}
          when: sometimes
        """)
    with pytest.raises(RuleSetError) as err:
        load_rules([rules])
    messages = [f"{p.line}:{p.col}: {p.message}" for p in err.value.problems]
    assert any("2:10: model: '../elsewhere.npz' is not a file name" in m for m in messages), messages
    assert any("unknown kind 'denail' (did you mean 'denial'?)" in m for m in messages)
    assert any("unknown key 'levle' (did you mean 'level'?)" in m for m in messages)
    assert any("thresholds.claim: must be a probability" in m for m in messages)
    assert any("unknown 'when' 'sometimes'" in m for m in messages)
    # the CLI: one line per problem and exit 2 where the rules are loaded to match
    r = runner.invoke(app, ["rules", "eval", str(rules), str(CORPUS / "en.jsonl")])
    assert r.exit_code == 2 and "classifier.yml:2:10: model:" in r.output


def test_a_second_classifier_and_a_duplicate_id(tmp_path: Path, small) -> None:
    items, fitted = small
    rules = _pack(tmp_path, fitted, items)
    shutil.copy(rules / "classifier.yml", rules / "second.yml")
    with pytest.raises(RuleSetError, match="a second classifier"):
        load_rules([rules])
    (rules / "second.yml").unlink()
    write(rules / "classifier.yml", "classifier:\n  id: claim-en\n  model: classifier.npz\n")
    with pytest.raises(RuleSetError, match="duplicate id 'claim-en'"):
        load_rules([rules])


# -- the matcher's hit -------------------------------------------------------------------------
def test_the_matcher_adds_the_classifier_hit(tmp_path: Path, small) -> None:
    items, fitted = small
    rules = _pack(tmp_path, fitted, items, thresholds={"claim": 0.0, "statement": 0.0})
    m = Matcher(load_rules([rules]), default_destinations=("slack",))
    claim = next(it for it in items if it.label == "claim" and "claimed responsibility" not in it.text)
    proba = m.classifier.proba(claim.text)
    top = m.classifier.classes[int(proba.argmax())]
    hits = m.match(msg(claim.text))
    if top in ("claim", "statement"):
        (hit,) = hits
        digest = hashlib.sha256((rules / "classifier.npz").read_bytes()).hexdigest()
        assert hit.rule_id == "classifier" and hit.rule_hash == digest and hit.kind == top
        assert hit.level == "medium" and hit.title == f"Learned classifier: {top}" and hit.matches == ()
        assert hit.tags == ("classifier",) and hit.destinations == ("slack",)
        assert hit.score == pytest.approx(float(proba.max()), abs=1e-6)
    # beside a rule hit: both, the classifier's last, with the rule hit's actors
    hits = m.match(msg("The group claimed responsibility for the attack on the base"))
    assert hits[0].rule_id == "claim-en" and hits[0].score is None
    if len(hits) == 2:
        assert hits[1].rule_id == "classifier" and hits[1].actors == hits[0].actors
    assert [h.rule_id for h in m.match(msg("The group claimed responsibility"), classifier=False)] == ["claim-en"]


def test_thresholds_kinds_and_when(tmp_path: Path, small) -> None:
    items, fitted = small
    rules = _pack(tmp_path, fitted, items, thresholds={"claim": 0.0, "statement": 0.0})
    texts = [it.text for it in items]
    m = Matcher(load_rules([rules]))
    fired = [h for t in texts for h in m.match(msg(t)) if h.rule_id == "classifier"]
    assert fired and {h.kind for h in fired} <= {"claim", "statement"}
    # thresholds in the file override the model's; a threshold of 1 fires (almost) never
    write(rules / "classifier.yml", "classifier:\n  model: classifier.npz\n  kinds: [claim]\n  thresholds: {claim: 1.0}\n")
    m = Matcher(load_rules([rules]))
    assert not [h for t in texts for h in m.match(msg(t)) if h.rule_id == "classifier"]
    # no-rule-alert: not beside a rule hit at its level or above
    write(rules / "classifier.yml", "classifier:\n  model: classifier.npz\n  when: no-rule-alert\n  thresholds: {claim: 0, statement: 0}\n")
    m = Matcher(load_rules([rules]))
    both = [m.match(msg(t + " claimed responsibility")) for t in texts]
    assert all(h.rule_id == "claim-en" for hits in both for h in hits)
    # enabled: false
    write(rules / "classifier.yml", "classifier:\n  model: classifier.npz\n  enabled: false\n")
    assert Matcher(load_rules([rules])).classifier is None


def test_a_pack_without_a_classifier_matches_as_before(tmp_path: Path) -> None:
    rules = write(tmp_path / "r" / "claim.yml", RULE).parent
    m = Matcher(load_rules([rules]))
    assert m.classifier is None and load_rules([rules]).classifier is None
    assert [h.rule_id for h in m.match(msg("They claimed responsibility"))] == ["claim-en"]
    assert m.match(msg("nothing here")) == []
    assert m.match(msg("They claimed responsibility"))[0].score is None
    # the shipped pack without its classifier file: the same rule hits as with it, minus the classifier's
    full = load_matcher([REPO / "rules"], cache=False)
    bare = Matcher(load_rules([REPO / "rules"], classifier=False))
    assert full.classifier is not None and bare.classifier is None
    for it in read_corpus([CORPUS / "en.jsonl"], "test")[:60]:
        a = [(h.rule_id, h.kind) for h in full.match(it.message()) if h.rule_id != "classifier"]
        assert a == [(h.rule_id, h.kind) for h in bare.match(it.message())]


def test_the_cache_keeps_the_classifier_and_its_key_follows_the_model(tmp_path: Path, small, cache) -> None:  # noqa: F811
    items, fitted = small
    rules = _pack(tmp_path, fitted, items, thresholds={"claim": 0.0, "statement": 0.0})
    key1 = source_key([rules])
    status: list[str] = []
    first = load_matcher([rules], on_status=status.append)
    second = load_matcher([rules], on_status=status.append)
    assert status == ["miss", "hit"] and second.classifier is not None
    texts = [it.text for it in items[:40]]
    assert [first.match(msg(t)) for t in texts] == [second.match(msg(t)) for t in texts]
    # a retrained model (other thresholds: other bytes) is another key, and another fingerprint
    C.save_model(rules / "classifier.npz",
                 T.model_arrays(fitted, {"claim": 0.9, "statement": 0.9}, C.corpus_digest(items), "dev", {}))
    assert source_key([rules]) != key1
    third = load_matcher([rules], on_status=status.append)
    assert status[-1] == "miss" and third.classifier.key != second.classifier.key
    from monitor.bus.prepare import fingerprint

    assert fingerprint(third) != fingerprint(second)
    # the classifier file given alone: its model beside it is in the key too
    assert source_key([rules / "classifier.yml"]) is not None


def test_evaluate_counts_the_classifier_and_warns_of_a_stale_model(tmp_path: Path, small) -> None:
    items, fitted = small
    rules = _pack(tmp_path, fitted, items, thresholds={"claim": 0.0, "statement": 0.0})
    m = Matcher(load_rules([rules]))
    with_clf = evaluate(m, items)
    alone = evaluate(m, items, classifier=False)
    assert with_clf.overall().predicted > alone.overall().predicted
    assert "classifier" in with_clf.by_rule() and "classifier" not in alone.by_rule()
    # the model was trained on `items`, not on corpus/: rules eval warns (and still evaluates)
    r = runner.invoke(app, ["rules", "eval", str(rules), str(CORPUS / "fa.jsonl"), "--split", "dev", "--json"])
    assert r.exit_code == 0, r.output
    assert "warning: the classifier model" in r.stderr and "retrain" in r.stderr
    data = json.loads(r.stdout)
    assert data["classifier"]["stale"] and data["rules"]["classifier"]["hits"] > 0
    r = runner.invoke(app, ["rules", "eval", str(rules), str(CORPUS / "fa.jsonl"), "--split", "dev", "--json", "--no-classifier"])
    assert r.exit_code == 0 and "warning" not in r.stderr and "classifier" not in json.loads(r.stdout)["rules"]
    # a corpus the model was trained on: no warning
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": it.id, "text": it.text, "lang": it.lang, "label": it.label,
                                          "actor": it.actor, "source": it.source, "split": "dev"}) + "\n" for it in items),
                      encoding="utf-8")
    assert C.stale_reason(m.classifier.model, [corpus]) is None
    assert C.stale_reason(m.classifier.model, [CORPUS]) is not None
    # another corpus with none of the training split's items (a held-out set of test items): nothing to compare
    held_out = tmp_path / "held-out.jsonl"
    held_out.write_text(corpus.read_text(encoding="utf-8").replace('"split": "dev"', '"split": "test"'), encoding="utf-8")
    assert C.stale_reason(m.classifier.model, [held_out]) is None
    r = runner.invoke(app, ["rules", "eval", str(rules), str(held_out), "--json"])
    assert r.exit_code == 0 and "warning" not in r.stderr, r.output


def test_the_shipped_model_loads_and_matches_the_corpus() -> None:
    model = C.load_model(REPO / "rules" / "classifier.npz")
    assert model.classes == tuple(sorted(C.CLASSES)) and model.corpus_split == "dev"
    assert set(model.thresholds) == {"claim", "statement"}
    # stale when corpus/'s dev split changed since training: retrain (make eval warns too)
    assert C.stale_reason(model, [CORPUS]) is None, "retrain: claimwatch rules classifier train corpus/ --split dev"


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_score_and_train(tmp_path: Path, small) -> None:
    items, fitted = small
    rules = _pack(tmp_path, fitted, items, thresholds={"claim": 0.0, "statement": 0.0})
    r = runner.invoke(app, ["rules", "classifier", "score", "--rules", str(rules), "--json",
                            "The Islamic State claimed responsibility for the attack"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data["probabilities"]) == set(fitted.classes) and abs(sum(data["probabilities"].values()) - 1) < 1e-4
    f = tmp_path / "t.txt"
    f.write_text("بیانیه سپاه", encoding="utf-8")
    r = runner.invoke(app, ["rules", "classifier", "score", "--rules", str(rules), "--file", str(f)])
    assert r.exit_code == 0 and "none" in r.stdout
    r = runner.invoke(app, ["rules", "classifier", "score", "--rules", str(rules)])
    assert r.exit_code == 2 and "give a TEXT or --file" in r.output
    # train: the corpus file's dev split, the rules beside; written where asked
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": it.id, "text": it.text, "lang": it.lang, "label": it.label,
                                          "actor": it.actor, "source": it.source, "split": "dev"}) + "\n" for it in items),
                      encoding="utf-8")
    out = tmp_path / "new.npz"
    r = runner.invoke(app, ["rules", "classifier", "train", str(corpus), "--rules", str(rules), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and summary["items"] == len(items)
    r = runner.invoke(app, ["rules", "classifier", "train", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 2 and "no such file" in r.output


def test_the_python_fallback_scores_as_the_c_path(tmp_path: Path, small, monkeypatch: pytest.MonkeyPatch) -> None:
    items, fitted = small
    C.save_model(tmp_path / "m.npz", T.model_arrays(fitted, {}, C.corpus_digest(items), "dev", {}))
    model = C.load_model(tmp_path / "m.npz")
    texts = [it.text for it in read_corpus([CORPUS], "test")[:40]]
    fast = model.proba_many(texts)
    monkeypatch.setattr(C, "_c_extract", None)
    monkeypatch.setattr(C, "_c_score", None)
    np.testing.assert_allclose(model.proba_many(texts), fast, atol=1e-12)
