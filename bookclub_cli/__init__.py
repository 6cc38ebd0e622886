"""The ``bookclub`` command line: a thin face over recsys, training, catalog and api."""
