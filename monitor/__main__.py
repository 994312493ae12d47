"""`python -m monitor` is the same program as the `policy-monitor` script."""

from monitor.cli import entry

if __name__ == "__main__":
    entry()
