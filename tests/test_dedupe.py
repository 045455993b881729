"""Near-duplicate detection: signatures, threshold evidence, groups, persistence through the state store."""

from __future__ import annotations

import itertools
import random
import sqlite3

import numpy as np
import pytest
import store_helpers
from datasketch import MinHash

from woshipm_crawler.state import StateStore, dedupe
from woshipm_replica import Corpus, vocab

# A template-generated Chinese corpus, far more self-similar than real articles: every article draws
# from the same sentence frames, vocabulary and footer, which is the hard case for a threshold.
# The replica's own vocabulary (woshipm_replica.vocab), with the test's own sentence frames.
ROLES, DOMAINS, CONCEPTS, VERBS, OUTCOMES, CONNECTORS = (
    list(words) for words in (vocab.ROLES, vocab.DOMAINS, vocab.CONCEPTS, vocab.VERBS, vocab.OUTCOMES,
                              vocab.CONNECTORS)
)
NUMS = list(vocab.NUMBERS)
FRAMES = [
    "{role}在{domain}里最常遇到的难题，往往不是{c1}本身，而是{c2}没有被{verb}清楚。",
    "{conn}，持续{verb}{c1}，才能让{outcome}。",
    "如果只盯着{c1}，{role}很容易忽略{c2}带来的连锁影响。",
    "以{domain}为例，{role}需要先{verb}{c1}，再决定{c2}的投入节奏。",
    "{conn}，{c1}和{c2}之间并不是非此即彼的关系。",
    "很多团队在{domain}项目中{verb}{c1}时，只做了一半就匆忙上线。",
    "我们曾经用{num}周时间{verb}{c1}，最终{outcome}。",
    "对{role}来说，{c1}的价值在于让{outcome}。",
    "{conn}，{role}应该把{c1}拆成{num}个可以独立验证的小问题。",
    "当{c1}的数据出现波动时，先别急着{verb}{c2}，而是回到用户场景里找原因。",
    "{domain}的竞争已经从{c1}转向{c2}，这对{role}提出了新的要求。",
    "一个好用的判断标准是：{c1}是否帮助{role}{verb}了{c2}。",
    "在{domain}中，{c1}做得好的产品，通常也把{c2}{verb}得很扎实。",
    "{role}和{role2}对{c1}的理解常常不一致，这正是需要{verb}的地方。",
    "不要把{c1}当成一次性的任务，它更像一个需要{verb}的长期工程。",
    "回看过去一年的{domain}案例，{c1}始终是绕不开的话题。",
    "{role}需要回答的第一个问题是：{c1}到底为谁解决了什么问题？",
    "对比{num}家{domain}公司的做法，可以看到{c1}的差异主要来自{c2}。",
    "在资源有限的情况下，{role}应优先{verb}{c1}，把{c2}留到下一阶段。",
]
FOOTER = (
    "本文由 @{author} 原创发布于人人都是产品经理。未经作者许可，禁止转载。\n\n"
    "题图来自Unsplash，基于CC0协议。\n\n"
    "该文观点仅代表作者本人，人人都是产品经理平台仅提供信息存储空间服务。"
)
REPOST_FOOTER = (
    "本文由人人都是产品经理作者【{author}】，微信公众号：【{author}笔记】，"
    "原创/授权 发布于人人都是产品经理，未经许可，禁止转载。"
)
AUTHORS = ["青山", "木子", "阿飞", "夏末", "晨曦", "鹿鸣", "南风", "小满", "林间", "北岛", "远山", "知秋"]


def sentence(rng):
    c1, c2 = rng.sample(CONCEPTS, 2)
    r1, r2 = rng.sample(ROLES, 2)
    return rng.choice(FRAMES).format(
        role=r1,
        role2=r2,
        domain=rng.choice(DOMAINS),
        c1=c1,
        c2=c2,
        verb=rng.choice(VERBS),
        outcome=rng.choice(OUTCOMES),
        conn=rng.choice(CONNECTORS),
        num=rng.choice(NUMS),
    )


def article(rng, sentences=40):
    paras, left = [], sentences
    while left > 0:
        k = min(left, rng.randint(2, 5))
        paras.append([sentence(rng) for _ in range(k)])
        left -= k
    return paras


def render(paras, footer):
    return "\n\n".join("".join(p) for p in paras) + "\n\n" + footer


def repost(rng, paras, changes):
    """Copy with ``changes`` sentences replaced by new ones."""
    paras = [list(p) for p in paras]
    slots = [(i, j) for i, p in enumerate(paras) for j in range(len(p))]
    for i, j in rng.sample(slots, changes):
        paras[i][j] = sentence(rng)
    return paras


def footer(rng):
    return FOOTER.format(author=rng.choice(AUTHORS))


def corpus_pairs(rng, sentences, n_articles=40, n_reposts=20):
    """Unrelated pairs (all pairs of n_articles) and repost pairs (1 and 2 sentences replaced)."""
    arts = [article(rng, sentences) for _ in range(n_articles)]
    texts = [render(a, footer(rng)) for a in arts]
    unrelated = list(itertools.combinations(texts, 2))
    reposts = []
    for a in arts[:n_reposts]:
        for changes in (1, 2):
            copy = render(repost(rng, a, changes), REPOST_FOOTER.format(author=rng.choice(AUTHORS)))
            reposts.append((render(a, FOOTER.format(author="青山")), copy))
    return unrelated, reposts


def measure_separation(unrelated, reposts) -> dict[str, float]:
    """Exact and estimated Jaccard statistics over unrelated pairs and repost pairs: the evidence the
    threshold is chosen from (max/mean of unrelated pairs, min/mean of repost pairs)."""

    def stats(pairs):
        exact, est = [], []
        for a, b in pairs:
            exact.append(dedupe.jaccard(a, b))
            sa, sb = dedupe.signature(a), dedupe.signature(b)
            est.append(dedupe.estimate(sa, sb) if sa is not None and sb is not None else 0.0)
        return np.array(exact), np.array(est)

    ue, us = stats(unrelated)
    re_, rs = stats(reposts)
    return {
        "unrelated_exact_max": float(ue.max()),
        "unrelated_exact_mean": float(ue.mean()),
        "unrelated_est_max": float(us.max()),
        "unrelated_est_mean": float(us.mean()),
        "repost_exact_min": float(re_.min()),
        "repost_exact_mean": float(re_.mean()),
        "repost_est_min": float(rs.min()),
        "repost_est_mean": float(rs.mean()),
    }


# -- pure functions ------------------------------------------------------------------------------


def test_shingles_ignore_space_punctuation_case_and_boilerplate():
    a = "产品经理的核心，是 理解用户。\n\nAI Agent 很重要！"
    b = "产品经理的核心,是理解用户.\nai agent很重要!\n\n本文由 @青山 原创发布于人人都是产品经理。禁止转载。"
    assert dedupe.comparable(a) == dedupe.comparable(b) == "产品经理的核心是理解用户aiagent很重要"
    assert dedupe.shingles(a) == dedupe.shingles(b)
    assert "产品经理的" in dedupe.shingles(a) and all(len(s) == 5 for s in dedupe.shingles(a))
    assert dedupe.shingles("短文") == {"短文"} and dedupe.shingles("  ") == set()
    # a long paragraph that merely mentions the site is content, not boilerplate
    long_para = "人人都是产品经理" + "社区里的讨论" * 40
    assert dedupe.strip_boilerplate(long_para) == long_para


def test_signature_is_datasketch_minhash_and_deterministic():
    text = render(article(random.Random(3), 20), footer(random.Random(3)))
    sig = dedupe.signature(text)
    reference = MinHash(num_perm=dedupe.NUM_PERM, seed=dedupe.SEED, scheme="affine32", hashfunc=int)
    reference.update_batch(dedupe.shingle_hashes(text).tolist())
    assert np.array_equal(sig, reference.hashvalues)
    assert sig.dtype == np.uint32 and sig.shape == (128,)
    assert np.array_equal(dedupe.from_bytes(dedupe.to_bytes(sig)), sig)
    assert len(dedupe.to_bytes(sig)) == 512
    # fixed value: any change of hashing or permutations changes stored signatures (bump SIGNATURE_PARAMS)
    assert (
        dedupe.signature("产品经理的核心是理解用户的真实需求并把它变成可以落地的方案")[:4].tolist()
        == FIXED_HEAD
    )
    assert dedupe.signature("太短了") is None


FIXED_HEAD = [110085852, 28656596, 32134260, 156742197]


def test_published_key_orders_dates_and_times():
    k = dedupe.published_key
    assert k("2024-03-01") < k("2024-03-01T08:00:01+08:00") < k("2024-03-02")
    assert k("2024-03-01T23:00:00+08:00") < k("2024-03-02")
    assert k(None) > k("2099-01-01") and k("garbage") == k(None)


# -- the threshold, measured ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentences", "unrelated_max", "repost_min"),
    [(8, 0.25, 0.50), (15, 0.25, 0.65), (40, 0.25, 0.80)],
)
def test_threshold_separates_unrelated_articles_from_reposts(sentences, unrelated_max, repost_min):
    unrelated, reposts = corpus_pairs(random.Random(sentences), sentences)
    stats = measure_separation(unrelated, reposts)
    print(sentences, {k: round(v, 3) for k, v in stats.items()})
    assert stats["unrelated_exact_max"] < unrelated_max < dedupe.THRESHOLD
    assert stats["unrelated_est_max"] < dedupe.THRESHOLD - 0.1
    assert stats["repost_exact_min"] > repost_min > dedupe.THRESHOLD
    assert stats["repost_est_min"] > dedupe.THRESHOLD + 0.05


# -- the index -----------------------------------------------------------------------------------


def planted(rng, n_unrelated=60, n_groups=5, copies=2):
    """(id, published, text) records: unrelated articles plus groups of reposts; and the truth."""
    records, truth = [], {}
    next_id = 1000
    for _ in range(n_unrelated):
        records.append((next_id, f"2024-01-{rng.randint(1, 28):02d}", render(article(rng, 20), footer(rng))))
        truth[next_id] = None
        next_id += 1
    for g in range(n_groups):
        base = article(rng, 25)
        original = next_id
        records.append((original, f"2023-06-{g + 1:02d}", render(base, footer(rng))))
        truth[original] = None
        next_id += 1
        for c in range(copies):
            text = render(repost(rng, base, rng.choice((1, 2))), REPOST_FOOTER.format(author="南风"))
            records.append((next_id, f"2024-02-{g + 1:02d}T1{c}:00:00+08:00", text))
            truth[next_id] = original
            next_id += 1
    return records, truth


def graph() -> dedupe.NearDuplicates:
    conn = sqlite3.connect(":memory:")
    conn.executescript(dedupe.SCHEMA)
    return dedupe.NearDuplicates(conn)


def test_index_flags_planted_reposts_and_nothing_else():
    records, truth = planted(random.Random(11))
    index = graph()
    for aid, published, text in records:
        index.index(aid, published, dedupe.signature(text))
    assert index.assignments(truth) == truth
    assert len(index.groups()) == 5 and all(len(g) == 3 for g in index.groups())


def test_original_arriving_after_its_reposts_reflags_them():
    rng = random.Random(5)
    base = article(rng, 30)
    original = (10, "2023-05-01", render(base, footer(rng)))
    repost_a = (30, "2024-01-02", render(repost(rng, base, 1), REPOST_FOOTER.format(author="南风")))
    repost_b = (
        20,
        "2024-01-01T09:30:00+08:00",
        render(repost(rng, base, 2), REPOST_FOOTER.format(author="北岛")),
    )
    index = graph()
    sig = {aid: dedupe.signature(text) for aid, _, text in (original, repost_a, repost_b)}

    # crawl order is newest first: the later repost, then the earlier one, then the original
    assert index.original_of(30, repost_a[1], sig[30]) is None
    assert index.index(30, repost_a[1], sig[30]) == {30: None}
    assert index.original_of(20, repost_b[1], sig[20]) is None  # 20 is earlier than 30
    assert index.index(20, repost_b[1], sig[20]) == {20: None, 30: 20}
    assert index.original_of(10, original[1], sig[10]) is None
    assert index.index(10, original[1], sig[10]) == {10: None, 20: 10, 30: 10}
    assert index.index(10, original[1], sig[10]) == {}  # idempotent

    # a late article that is an exact copy: flagged, nothing else changes
    assert index.original_of(40, "2024-03-01", sig[10]) == 10
    assert index.index(40, "2024-03-01", sig[10])[40] == 10
    # same date as the original and a lower id: the lower id wins the tie
    assert index.original_of(5, "2023-05-01", sig[10]) is None
    assert index.index(5, "2023-05-01", sig[10]) == {5: None, 10: 5, 20: 5, 30: 5, 40: 5}
    # the body of 5 is replaced by something unrelated: the group falls back to 10
    other = dedupe.signature(render(article(rng, 30), footer(rng)))
    assert index.index(5, "2023-05-01", other) == {5: None, 10: None, 20: 10, 30: 10, 40: 10}
    assert index.remove(40) == {40: None, 10: None, 20: 10, 30: 10}
    assert index.groups() == [[10, 20, 30]]


def test_the_state_store_flags_reposts_across_processes_views(tmp_path):
    records, truth = planted(random.Random(23), n_unrelated=20, n_groups=3)
    path = tmp_path / "state.sqlite3"
    first_half, second_half = records[: len(records) // 2], records[len(records) // 2 :]
    with StateStore(path) as store, StateStore(path) as other:  # two processes' connections
        for aid, published, text in first_half:
            store.commit_item({"id": aid, "published": published, "body_text": text}, "job-1")
        for aid, published, text in second_half:
            other.commit_item({"id": aid, "published": published, "body_text": text}, "job-2")
        assert store_helpers.duplicate_of_map(store) == truth
        assert store_helpers.near_duplicate_groups(store) == store_helpers.near_duplicate_groups(other)
        assert {p.id for p in store_helpers.pending_exports(store)} == set(truth)  # each one's outputs still to write


def test_stale_signatures_are_recomputed_from_the_stored_bodies(tmp_path):
    records, truth = planted(random.Random(31), n_unrelated=10, n_groups=2)
    with StateStore(tmp_path / "s.sqlite3") as store:
        for aid, published, text in records:
            store.commit_item({"id": aid, "published": published, "body_text": text}, "job")
        store.commit_item({"id": 1, "published": "2024-01-01", "body_text": "短"}, "job")
        assert store.sign_unsigned() == 0
        store._conn.execute("UPDATE minhash SET params = 'older-params'")
        store._conn.execute("DELETE FROM similar_pair")
        assert store.sign_unsigned() == len(records) + 1
        assert {k: v for k, v in store_helpers.duplicate_of_map(store).items() if k != 1} == truth
        assert store_helpers.duplicate_of_map(store)[1] is None  # too short to compare


def test_thousands_of_unrelated_articles_form_no_group():
    rng = random.Random(2)
    index = graph()
    for i in range(1500):
        index.index(i, "2024-01-01", dedupe.signature(render(article(rng, rng.randint(20, 60)), footer(rng))))
    assert index.groups() == []


def test_replica_corpus_planted_reposts():
    corpus = Corpus(300)
    articles = [corpus.article(i) for i in range(len(corpus))]
    index = graph()
    for a in articles:
        index.index(a.id, a.published_value(), dedupe.signature(a.body_text))
    truth = {a.id: a.duplicate_of for a in articles}
    found = index.assignments(truth)
    flagged = {aid for aid, dup in found.items() if dup is not None}
    planted_ids = {aid for aid, dup in truth.items() if dup is not None}
    assert planted_ids, "the replica plants reposts"
    precision = len(flagged & planted_ids) / max(len(flagged), 1)
    recall = len(flagged & planted_ids) / len(planted_ids)
    print(f"replica: {len(planted_ids)} planted, precision {precision:.2f}, recall {recall:.2f}")
    assert precision == recall == 1.0
    assert {aid: found[aid] for aid in planted_ids} == {aid: truth[aid] for aid in planted_ids}
