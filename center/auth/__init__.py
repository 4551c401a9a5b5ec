"""Who may do what: console users and their sessions, roles shared with the REST API's
tokens, login rate limiting and the audit of every action (docs/console.md)."""
