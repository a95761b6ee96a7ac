"""One check per exercise, with hints that teach.

Each ``check_*`` takes the learner's function, calls it on inputs chosen so that
the usual mistakes give visibly different numbers (moderate scores that keep
the softmax out of saturation, L, S and E all different, plus a square case
where a missing transpose still runs), and

- says "not attempted yet" if the function still raises ``NotImplementedError``:
  in a learner's session it prints that and returns, so that "Run All" goes on to
  the next exercise; under nbgrader (autograde or validate, which set
  ``NBGRADER_EXECUTION``) it raises :class:`NotAttempted` (an ``AssertionError``),
  so the untouched exercise scores 0;
- raises ``AssertionError`` with a hint naming the shape, axis or entry that is
  wrong, and by how much, when the answer is wrong;
- prints a one-line success message when it is right.

The exercise notebooks call these in their autograded cells; nbgrader counts a
cell that raises as failed. ``tests/test_checks.py`` shows each check a
catalogue of wrong answers that it must reject.

The checks live in one module per chapter (``ch00`` ... ``ch11``) and share the
machinery of ``_core``; ``from attention_course import checks; checks.check_softmax(f)``
finds every one of them here.
"""

from __future__ import annotations

from ._core import Delegated, NotAttempted
from .ch00 import *  # noqa: F401,F403
from .ch01 import *  # noqa: F401,F403
from .ch02 import *  # noqa: F401,F403
from .ch03 import *  # noqa: F401,F403
from .ch04 import *  # noqa: F401,F403
from .ch05 import *  # noqa: F401,F403
from .ch06 import *  # noqa: F401,F403
from .ch07 import *  # noqa: F401,F403
from .ch08 import *  # noqa: F401,F403
from .ch09 import *  # noqa: F401,F403
from .ch10 import *  # noqa: F401,F403
from .ch11 import *  # noqa: F401,F403

__all__ = [
    "NotAttempted",
    "Delegated",
    "check_softmax",
    "check_attention_weights",
    "check_context",
    "check_attention",
    "check_teacher_forcing",
    "check_final_states",
    "check_greedy_decode",
    "check_token_accuracy",
    "check_contexts",
    "check_additive_scores",
    "check_attention_step",
    "check_alignment_accuracy",
    "check_dot_scores",
    "check_scaled_dot_scores",
    "check_general_scores",
    "check_concat_scores",
    "check_split_concat_weight",
    "check_masked_softmax",
    "check_topk_hard_attention",
    "check_gumbel_argmax",
    "check_reinforce_surrogate",
    "check_straight_through_gumbel",
    "check_self_attention",
    "check_causal_mask",
    "check_padding_mask",
    "check_decoder_mask",
    "check_is_permutation_equivariant",
    "check_split_heads",
    "check_merge_heads",
    "check_multihead_self_attention",
    "check_mha_parameter_count",
    "check_sinusoidal_encoding",
    "check_rotate_pairs",
    "check_adds_distinct_positions",
    "check_shift_matrix",
    "check_layer_norm",
    "check_feed_forward",
    "check_encoder_block",
    "check_pre_norm_block",
    "check_causal_lm_loss",
    "check_temperature_probs",
    "check_top_p_filter",
    "check_previous_token_head",
    "check_attention_pool",
    "check_soft_align",
    "check_patchify",
    "check_seasonal_naive",
    "check_mase",
    "check_online_softmax_update",
    "check_attention_block_update",
    "check_cached_attention_step",
    "check_linear_attention",
    "check_temperature_limits",
    "check_why_subtract_the_max",
    "check_sharpening_beta",
    "check_dropped_word_prediction",
    "check_accuracy_after_dropping",
    "check_constant_query",
    "check_diagonal_alignment",
    "check_why_minus_infinity",
    "check_scaled_variance",
    "check_mean_largest_weight",
    "check_reinforce_variance",
    "check_reward_shift_question",
    "check_shared_projection_question",
    "check_padding_leak",
    "check_score_cost_question",
    "check_head_ablation",
    "check_pe_dot_question",
    "check_alibi_recent_mass",
    "check_layer_norm_length",
    "check_residual_growth_prediction",
    "check_residual_norms",
    "check_nats_to_bits_question",
    "check_greedy_cycle_question",
    "check_masked_lm_question",
    "check_previous_token_experiment",
    "check_mase_meaning",
    "check_erasure_flip_rates",
    "check_running_max_start",
    "check_kv_cache_bytes",
    "check_gqa_cache_size",
]
