"""Storage: the only place with SQL, one module per table family.

- ``schema`` (tables, SQLAlchemy 2.0 typed ORM) and ``migrations`` (Alembic); ``db``
  (engines, upgrade, readiness); ``bulk`` (COPY / executemany inside the caller's
  transaction).
- ``members`` (members, declared categories), ``titles`` (titles, their categories),
  ``categories`` (the tree), ``purchases`` (order lines: per member, RFM aggregates,
  writes), ``purchase_log`` (the bulk read of order lines into numpy for training),
  ``segments`` (member segments and segment profiles), ``plans`` (catalog plans),
  ``apikeys``.

Every function takes a ``Connection``; the caller owns the transaction.
"""
