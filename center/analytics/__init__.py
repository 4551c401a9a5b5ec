"""What the fleet's history says: incident statistics and the continuous-improvement report,
the ageing early warning, and clock quality per relay (docs/analytics.md).

Small modules: `config` (the `[analytics]` section); `rates` (the statistical tests,
pure); `history` (device facts: model, commissioning, firmware over time, exposure);
`incidents`, `stats`, `clock_sites` (the statistics); `report`, `report_tables`,
`plots` (SVG, pure) and `render_html`, `render_csv`, `render_pdf`; `clock` (pure) and
`clock_tracker` (at ingest); `ageing` (pure), `ageing_job`, `schedule`, `runs` (the
daily job); `queries`, `routes` (API) and `cli`. Nothing here is imported by the agent.
"""
