"""The commands' shared parsing: tyro's boxed errors condensed to one line, both flag spellings."""

import pytest

from accelrl.scripts._cli import UsageError, condense, parse

UNICODE = (
    "\u256d\u2500 Value error \u2500\u2500\u2500\u2500\u256e\n"
    "\u2502 Error parsing --total_timesteps: invalid literal for int() with base 10: \u2502\n"
    "\u2502 'abc'                                  \u2502\n"
    "\u2502 \u2500\u2500\u2500\u2500\u2500\u2500\u2500 \u2502\n"
    "\u2502 Argument helptext:                     \u2502\n"
    "\u2570\u2500\u2500\u2500\u2500\u256f\n"
)
ASCII = (
    "------------------------------\n"
    "Error parsing --total_timesteps: invalid literal for int() with base 10:\n"
    "'abc'\n"
    "------------------------------\n"
    "For full helptext, run accelrl-train --help\n"
)
PLAIN = (  # no box at all (a narrow or dumb terminal): the title above a rule
    " Value error                            \n"
    " -------------------------------------- \n"
    "  Error parsing --total_timesteps: invalid literal for int() with base 10:  \n"
    "  'abc'  \n"
    "  --------------------------------------\n"
    "  For full helptext, run accelrl-train --help   \n"
)
SUGGEST = (
    "\u256d\u2500 Unrecognized options \u2500\u256e\n"
    "\u2502 Unrecognized options: --total_timestep, 7 \u2502\n"
    "\u2502 \u2500\u2500\u2500\u2500 \u2502\n"
    "\u2502 Perhaps you meant: \u2502\n"
    "\u2502     --total_timesteps INT \u2502\n"
    "\u2570\u2500\u2500\u2500\u256f\n"
)


@pytest.mark.parametrize("text", [UNICODE, ASCII, PLAIN])
def test_condense_keeps_the_whole_reason_in_both_box_styles(text):
    assert condense(text) == (
        "Error parsing --total_timesteps: invalid literal for int() with base 10: 'abc'"
    )


def test_condense_names_the_first_suggestion():
    assert condense(SUGGEST) == (
        "Unrecognized options: --total_timestep, 7 Did you mean: --total_timesteps?"
    )


def test_parse_accepts_both_spellings_and_raises_one_line():
    import dataclasses

    @dataclasses.dataclass
    class A:
        total_timesteps: int = 5
        """steps"""

    assert parse(A, ["--total_timesteps", "7"], "prog").total_timesteps == 7
    assert parse(A, ["--total-timesteps", "8"], "prog").total_timesteps == 8
    with pytest.raises(UsageError) as e:
        parse(A, ["--total_timesteps", "x"], "prog")
    assert "\n" not in str(e.value) and "--total_timesteps" in str(e.value)
