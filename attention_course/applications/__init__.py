"""Attention at work in other fields: one module per field, each with its seeded toy data and small model.

Chapter 10 trains each of these inside a notebook. The modules build on the core
(masks → attention → multihead → positional → transformer) and nothing in the
core imports them.

- :mod:`.text`: synthetic reviews and documents; attention pooling over words and sentences.
- :mod:`.pairs`: sentence pairs for inference (entailment) with cross-attention.
- :mod:`.vision`: synthetic shape images, patches and a tiny vision transformer.
- :mod:`.sequences`: seasonal series, DNA with a planted motif, and next-item sequences.
"""
