"""Policy Monitor: watch platform policies, keep every version, flag AI-training changes."""

__version__ = "0.1.0"
