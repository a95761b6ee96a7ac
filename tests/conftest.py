"""Shared test configuration: one hypothesis profile for the whole suite.

Every property test runs 200 examples, with no deadline (the first call into
torch can be slow) and a derandomized search, so a run is reproducible and a
failure prints the blob that replays it (``@reproduce_failure``).
"""

from hypothesis import settings

settings.register_profile(
    "attention_course",
    max_examples=200,
    deadline=None,
    derandomize=True,
    print_blob=True,
    database=None,  # derandomized: nothing to remember between runs
)
settings.load_profile("attention_course")
