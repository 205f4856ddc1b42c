"""Consentry: a consent-first SMS messaging backend."""
