import pytest

from retrieval.chunking import chunk_text, is_chinese, split_sentences
from retrieval.sparse import encode_document, encode_query, term_id, tokenize


def test_english_sentences_are_kept_whole_in_chunks() -> None:
    text = " ".join(f"Sentence number {i} talks about the battery order." for i in range(40))
    chunks = chunk_text(text, max_chars=200)
    assert len(chunks) > 1
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks) == text


def test_chinese_is_cut_at_chinese_punctuation_without_spaces() -> None:
    text = "客户希望四月底前完成安装。预算已经批准！下一步是什么？" * 10
    chunks = chunk_text(text, max_chars=60)
    assert is_chinese(text)
    assert all(c[-1] in "。！？" for c in chunks)
    assert "".join(chunks) == text
    assert split_sentences("第一句。第二句！")[1] == "第二句！"


def test_a_sentence_longer_than_the_budget_is_split() -> None:
    chunks = chunk_text("x" * 500, max_chars=200)
    assert [len(c) for c in chunks] == [200, 200, 100]


def test_jieba_finds_chinese_terms_and_product_codes() -> None:
    terms = tokenize("华东电力要求交付储能设备ESS-200-7731，张伟确认了预算。")
    assert {"储能", "设备", "ess-200-7731", "7731", "张伟", "预算"} <= set(terms)
    assert "的" not in terms and "了" not in terms


def test_english_terms_are_stemmed_and_stopwords_dropped() -> None:
    assert tokenize("The renewals were approved") == tokenize("renewal approve")


def test_query_terms_match_document_terms() -> None:
    doc = encode_document("储能设备ESS-200-7731的交付时间")
    query = encode_query("ESS-200-7731 交付")
    assert set(query.indices) <= set(doc.indices)
    assert term_id("ess") in doc.indices
    assert doc.indices == sorted(doc.indices)


@pytest.mark.parametrize(("text", "lang"), [
    ("What did 佛山精工信息技术有限公司 ask about the warranty?", "en"),
    ("Pacific Northwest Storage Holdings的试点安排在哪里？", "zh"),
    ("华东电力 储能设备 安装 时间", "zh"),  # no function words: falls back to the share of CJK characters
    ("ESS-500-1024", "en"),
    ("Is Li Wei the CTO at 华东电力?", "en"),
    ("张经理是不是Acme Energy的CTO？", "zh"),
])
def test_question_language_follows_function_words_not_names(text: str, lang: str) -> None:
    from retrieval.search import query_language

    assert query_language(text) == lang
