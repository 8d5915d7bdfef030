"""`limacot report`: Markdown and self-contained HTML reports of a study, with PNG charts.

    from limacot.report import write_report
    paths = write_report("out/study")     # {"markdown": ..., "html": ..., "scaling": ..., ...}
"""

from limacot.report.write import write_report

__all__ = ["write_report"]
