"""Model Steward."""
