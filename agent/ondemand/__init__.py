"""On-demand polls: the daemon's poll service (`service`), its status view (`status`) and
control socket (`control_socket`), requests from the center (`remote`), polls without a
daemon (`direct`), driver results into the contract's answer (`answer`), and the audit of
every request (`audit`). See docs/polling.md."""
