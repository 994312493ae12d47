"""The read-only web UI and JSON API over the same database."""
