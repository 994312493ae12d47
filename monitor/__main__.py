"""`python -m monitor` is the same program as the `policy-monitor` script."""

from monitor.cli import main

if __name__ == "__main__":
    main(prog_name="policy-monitor")
