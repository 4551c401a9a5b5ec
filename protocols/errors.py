"""The small error hierarchy every protocol shares.

- `LinkError`: the link to a device or bus failed; retryable, the supervisor reconnects.
- `DecodeError`: a frame or record could not be decoded; the caller counts it, drops the
  frame and resyncs. Codecs raise nothing else on bad input.
- `WriteRefused`: something tried to send a write to a device whose config does not allow
  commands (the read-only guarantee).
"""


class ProtocolError(Exception):
    """Root of the protocol errors."""


class LinkError(ProtocolError):
    """The link to a device or bus failed; retryable."""


class DecodeError(ProtocolError):
    """Bytes that do not decode; count, drop and resync."""


class WriteRefused(ProtocolError):
    """A write was attempted on a read-only device."""
