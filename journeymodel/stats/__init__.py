"""Additive sufficient statistics: what each model needs from journeys, summed over parts of a log.
"""
