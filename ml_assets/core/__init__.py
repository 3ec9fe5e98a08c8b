"""What every layer shares: the typed spec, names, run tags, the model contract, metrics, SQL.

Layers import from here and from the layers upstream of them, never the other way round.
"""
