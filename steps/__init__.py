"""The step entrypoints: builder, trainer, predictor."""
