"""Exceptions a user can act on."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be obtained (no network, missing file); the message says how
    to point the library at a local copy."""
