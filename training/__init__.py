"""Training and evaluation of genre models."""
