"""Online serving: the champion of every dataset behind HTTP, fed by the online feature store."""
