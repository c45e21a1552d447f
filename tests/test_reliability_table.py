"""docs/reliability.md agrees with the tests it describes."""

from tests import reliability_table


def test_the_page_is_what_the_tests_generate():
    assert reliability_table.PAGE.read_text() == reliability_table.render(), (
        "docs/reliability.md is out of date with the tests' case lists: run python -m tests.reliability_table"
    )


def test_every_reliability_test_has_a_row():
    missing = reliability_table.tests_without_a_row()
    assert not missing, f"tests with no row in docs/reliability.md (add them to tests/reliability_table.py): {missing}"


def test_every_row_names_tests_that_exist():
    owners = reliability_table._owners()
    unknown = [t for *_, tests in reliability_table.rows() for t in tests if t not in owners]
    assert not unknown, f"rows name tests that do not exist: {unknown}"
