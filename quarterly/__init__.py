"""The quarter as one job (``bookclub quarter``): it drives training, segmentation, the catalogs,
the campaign's contacts, the member editions and the matchback in turn. It sits above
``training``, ``catalog``, ``campaign`` and ``demo`` (which do not import one another's
work, except ``demo`` simulating members' responses with ``campaign``'s response model) and
below the faces."""
