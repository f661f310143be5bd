"""The receiver as a process of its own (``python -m webhook``); the receiver itself is
``include.receiver`` (see README.md)."""
