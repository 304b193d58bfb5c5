"""The worker's own wording of what went wrong in an answer cell (tests/test_sandbox.py covers the fences)."""

import sys

from autograder.items import ANSWER, STUDENT, ItemId
from autograder.worker import compile_cell, describe_error


def _run_cell(code: str) -> dict:
    cell = {"id": str(ItemId(STUDENT, ANSWER, "decoder_block")), "code": code}
    try:
        exec(compile_cell(cell), {})
    except BaseException as err:  # noqa: BLE001 - what the worker would report
        return describe_error(err, sys.exc_info()[2])
    raise AssertionError("the cell ran")


def test_a_syntax_error_names_its_line_once_and_its_kind_once():
    error = _run_cell("import keras\n\ndef define_decoder_block(x, n):\n    return x +\n")
    assert error["error"] == "SyntaxError: invalid syntax (line 4 of answer cell decoder_block)"
    assert error["raised"] == "SyntaxError" and error["where"] == "line 4 of answer cell decoder_block"


def test_an_error_at_run_time_names_the_answer_line():
    error = _run_cell("x = 1\ny = [][x]\n")
    assert error["error"] == "IndexError: list index out of range (line 2 of answer cell decoder_block)"
