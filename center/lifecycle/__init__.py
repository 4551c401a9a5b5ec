"""Product lifecycle: fleet inventory, approved firmware and settings baselines, drift.

- `classify`: pure: how settings differ from a baseline, and how much that matters.
- `baselines`: approvals storage (firmware versions per model, settings per device).
- `drift`: records and approvals to drift signals for the ticket engine.
- `approvals`: people's approvals, each in one transaction with its ticket effects.
- `inventory`: the read side: fleet firmware report, firmware and settings histories.
- `report`: the fleet report as a table, CSV or JSON.
- `routes`: the REST endpoints.

See docs/lifecycle.md.
"""
