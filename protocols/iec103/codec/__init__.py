"""The IEC 103 codec: pure bytes to values and back, no I/O, no clocks, no asyncio.

- `frames`: FT1.2 frames (fixed, variable, `E5`) and the control field, and the
  `FrameExtractor` that finds frames in a byte stream;
- `asdu`: `decode_asdu` / `encode_asdu`, over the header in `asdu_base` and one module per
  family of types: `asdu_messages` (1, 2, 4-8), `asdu_measurands` (3, 9), `asdu_generic`
  (10, 21), `asdu_disturbance` (23), `asdu_transfer` (24-31);
- `time`: the CP32Time2a and CP56Time2a time tags.

Malformed input raises `protocols.errors.DecodeError` and nothing else.
"""
