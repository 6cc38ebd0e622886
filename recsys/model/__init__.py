"""The served model: what a trained model holds (``parts``), what a loaded model
precomputes (``index``), the ALS fold-in and explanation (``explain``), reason texts in
English and Chinese (``reasons``) and :class:`~recsys.model.trained.TrainedModel`, which
answers a recommendation with reasons on one scale.

Imports flow one way: parts ← index ← trained; explain and reasons are leaves.
"""
