"""Generated clubs for demos, benchmarks and tests: ``generate`` (numpy, deterministic per
seed), ``names`` (believable Chinese names, titles and places), ``load`` (bulk load through
``recsys.storage``)."""
