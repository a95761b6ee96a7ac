"""attention_course: the small library behind the course's notebooks.

Shape legend (PyTorch's letters, always batch-first; ``book/notation.md``):

    B  batch            H  heads (only)      D  model width (d_model; a recurrent state's size too)
    L  query length     S  key length        T  sequence length when L = S
    E  query/key size (d_k)                  Ev value size (d_v)
    Eq, Ek  query and key sizes when they differ (chapter 3)
    A  additive-scoring size    F  feed-forward width    P  positional-table length
    vocab_size  a vocabulary's size (never V: V is the values)

    query (B, L, E)   key (B, S, E)   value (B, S, Ev)
    weights (B, L, S), or (B, H, L, S) with heads; output (B, L, Ev)

Vectors are rows and multiply the weights from the left, ``q = x W_q`` with
W_q (D, E); an ``nn.Linear``'s ``weight`` is the transpose of that matrix.
Positions are 1..S in formulas and 0..S-1 in code.

Masks are bool with ``True`` = may attend (as in
``torch.nn.functional.scaled_dot_product_attention``; the opposite of
``torch.nn.MultiheadAttention``). A mask is (L, S) or has as many dims as the
scores; a fully masked row gets zero weights and a zero output.

Modules, each one concept; dependencies point one way
(masks -> scores -> attention -> multihead):
``reference`` (NumPy), ``masks``, ``scores``, ``attention``, ``multihead``,
``positional``, ``transformer`` (the encoder-decoder of chapter 8), ``efficient``
(online softmax, tiled and linear attention, the KV cache: chapter 11),
``sampling`` (greedy, temperature, top-k and top-p choice of the next token),
``corpora`` (the Shakespeare text, shipped with the package), ``lm`` (a
character-level decoder-only language model, its baselines and head scores:
chapter 9), ``induction`` (an induction head that forms in seconds: chapter 9),
``viz`` (plotting only), ``seeding``, ``timing``.
"""

from .attention import attend, hard_attention, masked_softmax, scaled_dot_product_attention, softmax
from .efficient import (
    CausalSelfAttention,
    KVCache,
    elu_feature_map,
    linear_attention,
    online_softmax,
    tiled_attention,
)
from .masks import causal_mask, padding_mask, sliding_window_mask
from .multihead import MultiHeadAttention, merge_heads, split_heads
from .positional import (
    LearnedPositionalEmbedding,
    alibi_bias,
    alibi_slopes,
    SinusoidalPositionalEncoding,
    rotary_embedding,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)
from .scores import (
    SCORE_RULES,
    additive_scores,
    concat_scores,
    dot_scores,
    general_scores,
    make_score,
    scaled_dot_scores,
)
from .seeding import seed_everything

__all__ = [
    "softmax",
    "masked_softmax",
    "attend",
    "scaled_dot_product_attention",
    "hard_attention",
    "causal_mask",
    "padding_mask",
    "sliding_window_mask",
    "online_softmax",
    "tiled_attention",
    "linear_attention",
    "elu_feature_map",
    "KVCache",
    "CausalSelfAttention",
    "dot_scores",
    "scaled_dot_scores",
    "general_scores",
    "concat_scores",
    "additive_scores",
    "make_score",
    "SCORE_RULES",
    "MultiHeadAttention",
    "split_heads",
    "merge_heads",
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rotary_embedding",
    "alibi_slopes",
    "alibi_bias",
    "seed_everything",
]

__version__ = "0.1.0"
