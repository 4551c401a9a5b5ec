"""What the fleet's history says: incident statistics and the continuous-improvement report,
the ageing early warning, and clock quality per relay (docs/analytics.md).

Modules stay small: `config` (the `[analytics]` section), `rates` (the statistical tests,
pure), `history` (device facts: model, commissioning, firmware over time, exposure),
`stats` and `report` (figures), `plots` (SVG, pure), `render_*` (HTML, CSV, PDF),
`clock` (pure) and `clock_tracker` (at ingest), `ageing` (pure) and `ageing_job` (daily),
`routes` (API), `cli`. Nothing here is imported by the agent.
"""
