"""Colours for the terminal, when it is one and NO_COLOR is not set."""
import os
import sys

COLOUR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
BOLD, GREEN, RED, YELLOW, DIM, RESET = (
    ("\033[1m", "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m") if COLOUR else ("",) * 6)
