"""Offline retraining: extract → matrix → fit → evaluate → versioned, promoted model."""
