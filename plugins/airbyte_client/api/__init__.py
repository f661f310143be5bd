"""The two Airbyte API flavours: ``config`` (Configuration API) and ``public`` (Public API),
each as requests to send and parsers of their answers, over the shapes in ``base``."""
