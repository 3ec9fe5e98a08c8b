"""The online feature store: what serving needs to compute a request's features at request time."""
