"""Hostile and broken notebooks, built from the solution notebook.

`graded_notebooks(ctx)` returns the notebooks that go through a whole grading, each with the attacks it holds
(several per notebook: one per answer cell, or one per hidden input of a checked function), so that one grading
proves many cases and the checks that no attack touches show that they still score. `broken_files(folder)`
writes the malformed files, which never reach a worker. `ctx` holds the paths and ports of one test run.
"""

from __future__ import annotations

import copy
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from . import attacks as A

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "autoencoder" / "autoencoder.ipynb"

# where the attacks of the "inside a checked function" notebooks strike: hidden inputs (shape + num_filters)
ENC_HIDDEN_A, ENC_HIDDEN_B = (7, 7, 3, 8), (13, 10, 2, 5)
DEC_HIDDEN_A, DEC_HIDDEN_B = (3, 3, 4, 8), (5, 9, 2, 3)
ENC_STRUCTURE = (12, 12, 3, 6)  # the input of all three encoder structure checks


@dataclass
class Hostile:
    name: str
    nb: dict
    cases: list[str]  # the attack cases this grading proves
    needs: tuple[str, ...] = ()  # sandbox fences without which the attacks would not be contained
    limits_hit_s: float = 0.0  # the time limits its attacks run into, for the bound on the grading's time
    slow: bool = False
    extra: dict = field(default_factory=dict)


def solution() -> dict:
    return json.loads(SOLUTION.read_text())


def cell(nb: dict, grade_id: str) -> dict:
    return next(
        c
        for c in nb["cells"]
        if isinstance(c, dict) and c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
    )


def answers(encoder: str = A.ENCODER, decoder: str = A.DECODER) -> dict:
    nb = solution()
    cell(nb, "encoder_block")["source"] = encoder
    cell(nb, "decoder_block")["source"] = decoder
    return nb


def graded_notebooks(ctx: dict, item_s: float) -> list[Hostile]:
    """Every notebook graded whole. `item_s` is the course's per-item limit (a timed-out item costs that)."""
    watchdog_s = item_s + 5.0
    out = []
    reads = A.fill(
        A.READS,
        reads=ctx["reads"],
        grader_pid=ctx["grader_pid"],
        token=ctx["token"],
        tmp_mark=ctx["tmp_mark"],
        site_mark=ctx["site_mark"],
    )
    writes = A.fill(
        A.WRITES,
        create=ctx["create"],
        touch=ctx["touch"],
        overwrite=ctx["overwrite"],
        tcp_port=ctx["tcp_port"],
        udp_port=ctx["udp_port"],
        abstract=ctx["abstract"],
        token=ctx["token"],
    )
    out.append(
        Hostile(
            "escape",
            answers(A.ENCODER + reads, A.DECODER + writes),
            [
                "read reference_weights/",
                "read solutions/",
                "read source/",
                "read another student's submission",
                "read the grader's reference cache (hidden checks' answers)",
                "read the gradebook",
                "read autograded/ and feedback/",
                "read another grading's scratch in the grader's /tmp",
                "see or signal the grader's process",
                "read the grader's environment",
                "write autograded/, feedback/ or a fake results.json there",
                "write the gradebook",
                "write the venv's site-packages or the data cache (read by later gradings)",
                "write the course files or the submission",
                "leave files in /tmp or env variables for a later grading",
                "TCP to loopback",
                "UDP to loopback",
                "abstract unix socket",
                "connect outside / DNS",
                "write /proc/sys or /proc/sysrq-trigger",
            ],
            needs=("mount_namespace", "read_only_root", "network_namespace", "pid_namespace"),
        )
    )
    forge_enc = A.ENCODER + A.fill(A.FORGE_ENCODER, course=ctx["course"])
    out.append(
        Hostile(
            "forge",
            answers(forge_enc, A.WRONG_DECODER + A.FORGE_DECODER),
            [
                "junk flood of the events file (70 MB line)",
                "monkey-patch the checker, numpy and builtins",
                "export links to the reference model and /dev/zero",
                "fake results payload on stdout",
                "fake results.json in the worker's folder",
                "forged events for later checks",
                "forged events after the worker finished (atexit)",
                "a forked child forging events for later checks",
                "a forged result that cannot be decoded",
            ],
            needs=("pid_namespace",),
        )
    )
    out.append(
        Hostile(
            "exit0",
            answers(A.ENCODER + A.MEMORISE, A.WRONG_DECODER + A.EXIT0_DECODER),
            [
                "exit early with status 0 after forging results and `finished`",
                "memorise the training set (nearest-neighbour lookup export)",
            ],
        )
    )
    out.append(
        Hostile(
            "import_crash_fork",
            answers(A.ENCODER + A.C_CRASH, A.DECODER + A.FORK_BOMB),
            ["C-level crash (ctypes) in an answer cell", "fork bomb in an answer cell"],
            needs=("cgroup_pids",),
        )
    )
    out.append(
        Hostile(
            "import_timer_print_file",
            answers(A.ENCODER + A.CATCH_THE_TIMER, A.DECODER + A.PRINT_GIGABYTE + A.HUGE_FILE),
            [
                "catch the timer's exception in an endless loop (answer cell)",
                "print a gigabyte in an answer cell",
                "write a 300 MB file",
            ],
            limits_hit_s=watchdog_s,
        )
    )
    enc = A.inside(A.INSIDE_ENCODER, {ENC_HIDDEN_A: "crash", ENC_HIDDEN_B: "memory", ENC_STRUCTURE: "sleep"})
    dec = A.inside(A.INSIDE_DECODER, {DEC_HIDDEN_A: "fork_bomb", DEC_HIDDEN_B: "loop"})
    out.append(
        Hostile(
            "inside_1",
            answers(enc, dec),
            [
                "C-level crash inside a checked function",
                "memory bomb inside a checked function",
                "sleep past the time limit inside a checked function",
                "fork bomb inside a checked function",
                "endless loop inside a checked function",
            ],
            needs=("cgroup_pids", "pid_namespace"),
            limits_hit_s=2 * item_s,
        )
    )
    enc = A.inside(A.INSIDE_ENCODER, {ENC_HIDDEN_A: "exit0", ENC_HIDDEN_B: "catch_timer"})
    dec = A.inside(A.INSIDE_DECODER, {DEC_HIDDEN_A: "print_gigabyte", DEC_HIDDEN_B: "timer_off_sleep"})
    out.append(
        Hostile(
            "inside_2",
            answers(enc, dec),
            [
                "exit with status 0 inside a checked function",
                "catch the timer inside a checked function",
                "print a gigabyte inside a checked function",
                "switch the timer off and sleep inside a checked function",
            ],
            limits_hit_s=3 * watchdog_s,
            slow=True,
        )
    )
    out.append(
        Hostile(
            "copy_input",
            answers(A.COPY_ENCODER, A.COPY_DECODER),
            ["copy the input past the bottleneck (skip connection)"],
        )
    )
    out.append(
        Hostile(
            "pretend",
            answers(A.PRETEND_ENCODER, A.PRETEND_DECODER),
            [
                "a made-up KerasTensor of the right shape",
                "an enormous (symbolic) tensor",
                "a class of the student's named like a Keras layer",
                "an object claiming to be a KerasTensor",
                "NaN outputs of the trained model",
            ],
        )
    )
    out.append(Hostile("tampered", tampered(), list(TAMPER_CASES)))
    return out


# ------------------------------------------------------------------------------------------------ tampering

TAMPER_CASES = {
    "locked setup cell edited (the builder)": ("locked_cell_edited", "build_model"),
    "locked setup cell edited (the imports: os._exit)": ("locked_cell_edited", "setup"),
    "hidden-test cell deleted": ("locked_cell_deleted", "encoder_block_structure"),
    "test cell edited to run forged checks": ("locked_cell_edited", "decoder_block_structure"),
    "points and grade flag changed": ("cell_metadata_changed", "reconstruction_quality"),
    "answer cell's grade_id changed": ("cell_metadata_changed", "decoder_block"),
    "test cell duplicated": ("duplicated_cell", "decoder_block_shapes"),
    "cells moved": ("cells_moved", None),
    "answer cell's metadata removed": ("cell_metadata_removed", "encoder_block"),
    "nbgrader checksum altered": ("checksum_changed", "train"),
    "locked flag removed": ("cell_metadata_changed", "plot_reconstructions"),
    "setup cell turned into an answer cell": ("cell_metadata_changed", "load_data"),
    "a new graded cell worth 100 points": ("cells_not_graded", None),
    "kernel metadata removed": ("no_kernel_metadata", None),
    "cells of the wrong types (numbers, lists as grade_ids)": ("invalid_notebook", None),
}


def tampered() -> dict:
    """The solution, tampered with in every way of TAMPER_CASES at once (the answers themselves are right)."""
    nb = solution()
    nbg = lambda gid: cell(nb, gid)["metadata"]["nbgrader"]  # noqa: E731
    cell(nb, "build_model")["source"] = "def build_autoencoder(*args, **kwargs):\n    raise SystemExit\n"
    cell(nb, "setup")["source"] = "import os\nos._exit(0)\n"
    nb["cells"].remove(cell(nb, "encoder_block_structure"))
    cell(nb, "decoder_block_structure")["source"] = (
        '### BEGIN HIDDEN TESTS\nrun_check("block_output_shape", define_decoder_block, input_shape=(1, 1, 1), '
        'num_filters=1, expected={"shape": [2, 2, 1]})\n### END HIDDEN TESTS\n'
    )
    nbg("reconstruction_quality").update(points=400, grade=False)
    nbg("decoder_block").update(grade_id="decoder_block_v2", points=50)
    dup = copy.deepcopy(cell(nb, "decoder_block_shapes"))
    dup["id"] = "duplicate"
    nb["cells"].insert(nb["cells"].index(cell(nb, "decoder_block_shapes")), dup)
    quality = cell(nb, "reconstruction_quality")
    nb["cells"].remove(quality)
    nb["cells"].insert(0, quality)
    cell(nb, "encoder_block")["metadata"].pop("nbgrader")
    nbg("train")["checksum"] = "0" * 32
    nbg("plot_reconstructions")["locked"] = False
    nbg("load_data").update(solution=True, locked=False)
    cell(nb, "load_data")["source"] = "raise SystemExit\n"
    nb["cells"].append(
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "bonus",
            "outputs": [],
            "metadata": {
                "nbgrader": {
                    "grade": True,
                    "grade_id": "bonus",
                    "locked": True,
                    "points": 100,
                    "schema_version": 3,
                    "solution": False,
                    "task": False,
                }
            },
            "source": 'run_check("block_output_shape", define_encoder_block, input_shape=(2, 2, 1), '
            'num_filters=1, expected={"shape": [1, 1, 1]})\n',
        }
    )
    nb["metadata"].pop("kernelspec")
    nb["cells"] += [
        42,
        {"cell_type": "markdown", "metadata": {}, "source": [1, None]},
        {
            "cell_type": "code",
            "id": ["x"],
            "metadata": {"nbgrader": {"grade_id": ["setup"]}},
            "source": "",
            "outputs": [],
            "execution_count": None,
        },
    ]
    return nb


# ------------------------------------------------------------------------------------------------ broken files


def broken_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Malformed submissions: name -> (path, the finding expected). None of them reaches a worker."""
    folder.mkdir(parents=True, exist_ok=True)
    text = SOLUTION.read_text()
    out = {}

    def put(name, data, kind):
        path = folder / name / "submission.ipynb"
        path.parent.mkdir()
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        out[name] = (path, kind)

    put("empty file", b"", "not_json")
    put("truncated JSON", text[: len(text) // 2], "not_json")
    put("JSON nested 100000 deep", "[" * 100000 + "]" * 100000, "not_json")
    put("JSON but a list", "[1, 2, 3]", "not_a_notebook")
    put("cells is not a list", json.dumps({"cells": {"a": 1}, "nbformat": 4}), "not_a_notebook")
    put("UTF-16 text", text.encode("utf-16"), "not_utf8")
    put("binary garbage", random.Random(0).randbytes(4096), "not_utf8")
    put("UTF-8 byte order mark", "\ufeff" + text, "not_json")
    nb5 = json.loads(text)
    nb5["nbformat"] = 5
    put("notebook format 5", json.dumps(nb5), "wrong_format_version")
    big = json.loads(text)
    big["cells"][0]["source"] = "x" * (21 * 1024 * 1024)
    put("enormous notebook (21 MB)", json.dumps(big), "notebook_too_large")
    for name, kind in (
        ("symlink to the solutions", "not_a_file"),
        ("FIFO named .ipynb", "not_a_file"),
        ("directory named .ipynb", "not_a_file"),
    ):
        path = folder / name / "submission.ipynb"
        path.parent.mkdir()
        if name.startswith("symlink"):
            path.symlink_to(SOLUTION)
        elif name.startswith("FIFO"):
            os.mkfifo(path)
        else:
            path.mkdir()
        out[name] = (path, kind)
    return out
