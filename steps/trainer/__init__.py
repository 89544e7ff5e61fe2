"""The trainer step: run an MLproject entry point with MLflow tracking, return the model URL."""
