"""The autoencoder course kit: assignments, an isolated autograder, and reports."""

__version__ = "0.1.0"
