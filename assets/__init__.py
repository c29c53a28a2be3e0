"""onetrack's assets: one package per stage; each asset is a thin wrapper around pure functions."""
