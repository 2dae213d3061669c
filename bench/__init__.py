"""Side-by-side benchmarks of our broker against its peers on one PostgreSQL.

Run ``python -m bench`` (``make bench``). Every system under test gets a fresh database per
scenario, real worker processes and the same server settings, so the figures differ only by
what the systems do. See ``bench/__main__.py`` for the flags and ``bench/scenarios`` for what
each figure measures.
"""
