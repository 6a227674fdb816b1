"""Analyses built on journeys and fitted models: describe, the experience (emotion curves,
switches) and pain points.
"""
