"""Renderers: each turns the model's data into text for one medium; none prints."""
