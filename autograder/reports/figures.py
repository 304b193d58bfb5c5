"""The class summary's figures, as PNG bytes: score distribution, pass rate per check, one quality metric against its
thresholds, the most frequent diagnosed mistakes.

matplotlib's object API on the Agg canvas (no pyplot, so no global state) and PNGs without a version stamp, so the
same class gives the same bytes. matplotlib is imported when a figure is drawn, not when the kit starts.
"""

from __future__ import annotations

import base64
import io
import re
import statistics
import textwrap

from ..results import as_number, format_number, format_points

# The same three states as the feedback page, and the bars of counts.
RED, AMBER, GREEN = "#cf222e", "#d4a72c", "#2da44e"
BAR = "#54aeff"


def figure(key: str, title: str, png: bytes, caption: str) -> dict:
    """A figure as the summary shows it (embedded as base64) and writes it beside (as `<key>.png`)."""
    return {
        "id": f"fig-{key}",
        "title": title,
        "caption": caption,
        "file": f"{key}.png",
        "png": png,
        "b64": base64.b64encode(png).decode("ascii"),
    }


def plot_scores(scores: list[float], max_score: float | None) -> bytes:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    top = max_score if max_score and max_score >= max(scores) else max(max(scores), 1.0)
    fig = _new_figure(10, 3.2)
    ax = fig.add_subplot()
    ax.hist(scores, bins=np.linspace(0, top, 11), color=BAR, edgecolor="white")
    mean, median = statistics.fmean(scores), statistics.median(scores)
    ax.axvline(mean, color="#0969da", linestyle="--", linewidth=1.5, label=f"mean {format_points(mean)}")
    ax.axvline(median, color="#1f2328", linestyle=":", linewidth=1.5, label=f"median {format_points(median)}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"total score (out of {format_points(top)})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1, 1), ncol=2)
    ax.set_title(f"{len(scores)} graded submissions", loc="left", fontsize=10)
    _style(ax)
    return _png(fig)


def plot_pass_rates(ranked: list[dict]) -> bytes:
    """One bar per check ({"name", "hidden", "rate", "passed", "n"}), in the given order, top to bottom."""
    fig = _new_figure(10, 0.42 * len(ranked) + 1.1)
    ax = fig.add_subplot()
    labels = [_label(c["name"] + (" (hidden)" if c["hidden"] else ""), 60) for c in ranked]
    rates = [c["rate"] for c in ranked]
    colours = [RED if r < 0.5 else AMBER if r < 0.8 else GREEN for r in rates]
    y = range(len(ranked))
    ax.barh(y, rates, color=colours, height=0.7)
    for i, c in enumerate(ranked):
        ax.text(c["rate"] + 0.01, i, f"{100 * c['rate']:.0f}%  ({c['passed']}/{c['n']})", va="center", fontsize=9)
    ax.set_yticks(list(y), labels, fontsize=9)
    ax.invert_yaxis()  # the first (worst) check on top
    ax.set_xlim(0, 1.18)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("students who passed")
    _style(ax)
    return _png(fig)


def plot_metric(metric: str, values: list[tuple[str, float]], rules: list[tuple[str, dict]]) -> bytes:
    """The students' values of one metric, with each profile's threshold (full credit) and failure level (none)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    xs = [v for _, v in values]
    marks = [
        number for _, r in rules for x in (r.get("threshold"), r.get("fail")) if (number := as_number(x)) is not None
    ]
    lo, hi = min(xs + marks), max(xs + marks)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    fig = _new_figure(10, 3.2)
    ax = fig.add_subplot()
    title = f"{len(xs)} students"
    if len(rules) == 1:  # shade full credit, partial credit and no credit, and count the students in each
        rule = rules[0][1]
        t, f = as_number(rule.get("threshold")), as_number(rule.get("fail"))
        if t is not None and f is not None:
            better = bool(rule.get("higher_is_better"))
            good, bad = ((t, hi), (lo, f)) if better else ((lo, t), (f, hi))
            ax.axvspan(*good, color=GREEN, alpha=0.08, linewidth=0)
            ax.axvspan(min(t, f), max(t, f), color=AMBER, alpha=0.10, linewidth=0)
            ax.axvspan(*bad, color=RED, alpha=0.08, linewidth=0)
            full = sum((x >= t) if better else (x <= t) for x in xs)
            none = sum((x <= f) if better else (x >= f) for x in xs)
            title += f": {full} full credit, {len(xs) - full - none} partial, {none} no credit"
    ax.hist(xs, bins=np.linspace(lo, hi, 21), color=BAR, edgecolor="white")
    styles = ["--", ":", "-."]
    for i, (profile, rule) in enumerate(rules):
        where = f" ({profile})" if len(rules) > 1 else ""
        arrow = "\u2265" if rule.get("higher_is_better") else "\u2264"
        ax.axvline(
            rule["threshold"],
            color=GREEN,
            linestyle=styles[i % 3],
            linewidth=2,
            zorder=3,
            label=f"full credit {arrow} {format_number(rule['threshold'])}{where}",
        )
        if as_number(rule.get("fail")) is not None:
            arrow = "\u2264" if rule.get("higher_is_better") else "\u2265"
            ax.axvline(
                rule["fail"],
                color=RED,
                linestyle=styles[i % 3],
                linewidth=2,
                zorder=3,
                label=f"no credit {arrow} {format_number(rule['fail'])}{where}",
            )
    ax.set_xlim(lo, hi)
    ax.set_xlabel(_label(metric, 80))
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, loc="left", fontsize=10)
    if rules:  # above the axes, where it never hides a bar
        ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1, 1), ncol=2 * len(rules), fontsize=9)
    _style(ax)
    return _png(fig)


def plot_diagnoses(common: list[tuple[str, int]], n_graded: int) -> bytes:
    """How many students showed each diagnosed mistake, most frequent on top."""
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(10, 0.55 * len(common) + 1.1)
    ax = fig.add_subplot()
    y = range(len(common))
    ax.barh(y, [n for _, n in common], color=AMBER, height=0.7)
    for i, (_, n) in enumerate(common):
        ax.text(n, i, f"  {n}", va="center", fontsize=10, fontweight="bold")
    ax.set_yticks(list(y), [_label(text, 55) for text, _ in common], fontsize=9)
    ax.invert_yaxis()
    top = max(n for _, n in common)
    ax.set_xlim(0, max(top * 1.15, top + 0.6))
    ax.set_xlabel(f"students (of {n_graded} graded)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _style(ax)
    return _png(fig)


def slug(name: str) -> str:
    """A metric's name as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "metric"


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same input, same bytes
    return buffer.getvalue()


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _label(text: str, width: int) -> str:
    """Wrapped, and with `$` escaped so that matplotlib never reads a label as mathtext."""
    return "\n".join(textwrap.wrap(text, width, max_lines=3, placeholder=" \u2026")).replace("$", r"\$")
