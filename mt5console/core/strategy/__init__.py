"""The strategy engine: model and validation, indicators, conditions, executor, exits, risk, filters."""
