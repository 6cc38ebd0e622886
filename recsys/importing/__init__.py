"""Adapters for outside data sets: each translates a public file into the row streams of
the club's import formats (``recsys.storage.imports``) — ``online_retail`` (UCI Online
Retail), ``shakespeare`` (the Shakespeare and Company lending library), ``hillstrom`` (the
Hillstrom e-mail campaign)."""
