"""Read-only web view of the archive: Datasette with claimwatch metadata and canned queries.

Needs the ``web`` extra (``pip install 'claimwatch[web]'``).
"""
