"""bookclub's domain: settings, storage, import, id maps, matrices and recommenders.

Nothing in here knows about HTTP, PDFs or the command line.
"""
