"""The README's table of headline figures says what the committed reports say.

Every number in an analysis's row of that table must appear, as a number, in the analysis's committed
report (``reports/NAME/report.md``): a regenerated report whose figures moved fails here until the
README follows it (a stale row once gave 1.15 and 8.7x where the report said 1.03 and 6.96).
"""

import re
from pathlib import Path

import pytest

import analyses

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")  # 175,181,291,520; 0.2002; 3


def table_rows() -> dict[str, str]:
    """analysis name -> the headline cell of its README row."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # not at "\|cos\|"
        if line.startswith("| `") and len(cells) == 3 and cells[0].strip("`") in analyses.ANALYSES:
            rows[cells[0].strip("`")] = cells[2]
    return rows


def appears(number: str, text: str) -> bool:
    """``number`` in ``text`` as a whole number (not the "15" inside "0.153" or "2015")."""
    return re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d]|[.,]\d)", text) is not None


def test_every_analysis_has_a_row():
    assert set(table_rows()) == set(analyses.ANALYSES)


@pytest.mark.parametrize("name", sorted(analyses.ANALYSES))
def test_the_readme_row_gives_the_reports_numbers(name):
    report = (ROOT / "reports" / name / "report.md").read_text()
    missing = [n for n in NUMBER.findall(table_rows()[name]) if not appears(n, report)]
    assert not missing, f"README's {name} row gives {missing}, which reports/{name}/report.md does not"


def test_a_stale_figure_is_caught():
    assert appears("1.03", "scores 1.03 (median") and not appears("1.15", "scores 1.153 and 21.15")
    assert not appears("15", "0.153, 2015, 1,150")
