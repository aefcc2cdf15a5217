"""Runnable examples: `python -m gpubk.examples.walkthrough`."""
