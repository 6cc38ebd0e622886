"""Quarterly segmentation and catalogs: segments → plans (pure data) → HTML → PDF."""
