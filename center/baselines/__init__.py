"""Firmware and settings baselines: fleet inventory, approved baselines, drift.

- `classify`: pure: how settings differ from a baseline, and how much that matters.
- `baselines`: approvals storage (firmware versions per model, settings per device).
- `drift`: records and approvals to drift signals for the ticket engine.
- `approvals`: people's approvals, each in one transaction with its ticket effects.
- `inventory`: the read side: fleet firmware report, firmware and settings histories.
- `report`: the fleet report as a table, CSV or JSON.

Their REST endpoints are in `center/api/baselines.py`, their commands in
`center/cli/baselines.py`.

See docs/lifecycle.md.
"""
