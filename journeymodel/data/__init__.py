"""Event logs in, journeys out: reading, timestamps, row order, data checks, journeys, paths, the
config file and the demo generator.
"""
