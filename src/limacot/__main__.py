"""`python -m limacot` = the `limacot` command."""

from limacot.cli import app

app(prog_name="limacot")
