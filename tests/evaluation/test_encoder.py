"""The sentence encoder path of RAVEN: masked mean pooling and the similarity stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_mean_pooling_ignores_padding(tiny_encoder: Path) -> None:
    import torch

    from hiwar.evaluation.raven.encoder import TextEncoder

    encoder = TextEncoder(str(tiny_encoder))
    assert encoder.backend == "transformers"
    short, long = "مرحبا", "أهلا وسهلا بك في القاهرة، كيف كانت رحلتك الطويلة؟"
    alone = encoder.encode([short])[0]
    batched = encoder.encode([short, long])  # the short text is padded here
    assert np.allclose(alone, batched[0], atol=1e-5)
    enc = encoder.tokenizer([short], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder.model(**enc).last_hidden_state[0]
    assert np.allclose(alone, hidden.mean(dim=0).numpy(), atol=1e-5)  # mean over the real tokens, by hand


def test_similarity_stage_scores_identical_empty_and_different(tiny_encoder: Path) -> None:
    from hiwar.evaluation.raven.stage import ReplySimilarity

    stage = ReplySimilarity(str(tiny_encoder))
    import pyarrow as pa

    messages = [[{"role": "user", "content": "مرحبا"}], [], [{"role": "user", "content": "ما رأيك؟"}]]
    batch = pa.Table.from_pydict(
        {
            "generated_text": ["الطقس جميل اليوم", None, "كرة القدم رياضة شعبية"],
            "reference": ["الطقس جميل اليوم", "أي شيء", "أحب الكشري والملوخية كثيرا"],
            "messages": messages,  # nested: passes through untouched
        }
    )
    out = stage(batch).to_pydict()
    assert out["cosine"][0] == pytest.approx(1.0, abs=1e-6)
    assert out["cosine"][1] == 0.0 and out["score"][1] == 0.0
    assert -1.0 <= out["cosine"][2] < 1.0 - 1e-4
    assert out["reply_chars"] == [16, 0, 21]
    assert out["messages"] == messages


def _save_as_sentence_transformer(encoder_dir: Path, out_dir: Path) -> Path:
    """Wrap the tiny BERT as a sentence-transformers model (Transformer + mean Pooling) saved to ``out_dir``."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the modules; older releases keep them in `models`
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer

    word = Transformer(str(encoder_dir))
    dim = (getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension)()
    SentenceTransformer(modules=[word, Pooling(dim, "mean")], device="cpu").save(str(out_dir))
    return out_dir


def test_sentence_transformers_backend_matches_masked_mean_pooling(tiny_encoder: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from hiwar.evaluation.raven.encoder import TextEncoder, is_sentence_transformers_model

    st_dir = _save_as_sentence_transformer(tiny_encoder, tmp_path / "st")
    assert is_sentence_transformers_model(str(st_dir)) and not is_sentence_transformers_model(str(tiny_encoder))
    texts = ["مرحبا", "أهلا وسهلا بك في القاهرة، كيف كانت رحلتك الطويلة؟", "الطقس جميل اليوم"]
    st = TextEncoder(str(st_dir))  # 'auto' picks sentence-transformers for a folder with modules.json
    assert st.backend == "sentence-transformers"
    ours = TextEncoder(str(tiny_encoder), backend="transformers", pooling="mean")
    # Two implementations of masked mean pooling over the same weights must agree, batched with padding.
    assert np.allclose(st.encode(texts, batch_size=3), ours.encode(texts, batch_size=3), atol=1e-5)
    assert st.encode(texts).shape == (3, 32)
