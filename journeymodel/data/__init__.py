"""Event logs in, journeys out: reading options, reading, timestamps, columns, row order, the
ledger, data checks, journey sets, journeys, paths, the config file and the demo generator.
"""
