"""Local development tooling (not deployed): the Airbyte server stand-in and helpers."""
