import math

import pytest

from interp.claims import Check, Claim, any_group


@pytest.mark.parametrize("op,value,threshold,passes", [
    (">=", 0.5, 0.5, True), (">=", 0.49, 0.5, False),
    (">", 0.5, 0.5, False), (">", 0.51, 0.5, True),
    ("<=", 0.5, 0.5, True), ("<=", 0.51, 0.5, False),
    ("<", 0.49, 0.5, True), ("<", 0.5, 0.5, False),
])
def test_check_compares_on_both_sides_of_its_threshold(op, value, threshold, passes):
    assert Check("x", value, op, threshold).passed is passes, f"{value} {op} {threshold} should be {passes}"


def test_within_uses_its_tolerance_and_nan_never_passes():
    assert Check("D", 0.53, "within", 0.5, tolerance=0.05).passed
    assert not Check("D", 0.56, "within", 0.5, tolerance=0.05).passed
    assert not Check("D", math.nan, ">=", 0.0).passed, "a NaN measurement must not support a claim"
    with pytest.raises(ValueError, match="tolerance"):
        Check("D", 0.5, "within", 0.5)


def test_claim_prints_rule_threshold_and_numbers_beside_its_verdict():
    claim = Claim("It breaks", "ablation breaks", (Check("still right", 0.98, "<=", 0.5, fmt=".0%"),))
    text = claim.markdown("because.")
    assert not claim.holds and "**It breaks** — no" in text
    assert "“ablation breaks”" in text and "still right 98% <= 50% (fails)" in text, text
    assert Claim("It breaks", "r", (Check("still right", 0.2, "<=", 0.5),)).verdict == "yes"
    with pytest.raises(ValueError, match="no checks"):
        Claim("empty", "r", ())


def test_all_and_any_modes():
    checks = (Check("a", 1.0, ">", 0.0), Check("b", -1.0, ">", 0.0))
    assert not Claim("s", "r", checks).holds
    assert Claim("s", "r", checks, mode="any").holds


def test_group_claim_holds_where_one_group_passes_and_names_it():
    claim = any_group("gates", "AND gate", {
        "last subject token": (Check("score", 3.0, ">", 2.0), Check("promotes", 0.1, ">=", 0.5)),
        "last token": (Check("score", 9.0, ">", 2.0), Check("promotes", 0.8, ">=", 0.5)),
    })
    assert claim.holds and claim.passing == ["last token"] and claim.verdict == "yes, at the last token"
    assert "at the last subject token: score 3 > 2 (passes) and promotes 0.1 >= 0.5 (fails)" in claim.markdown()
    none = any_group("gates", "AND gate", {"last token": (Check("score", 1.0, ">", 2.0),)})
    assert not none.holds and none.verdict == "no"
