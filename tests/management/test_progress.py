"""The one progress line every long command draws: only on a terminal, redrawn in place, ended once."""
import io

from django.core.management.base import OutputWrapper

from sizing_app.management.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_silent_off_a_terminal():
    out = io.StringIO()
    progress = Progress(OutputWrapper(out), "import", "rows")
    progress(5, 10)
    progress(10, 10)
    progress.close()
    assert out.getvalue() == ""


def test_known_total_draws_a_bar_and_ends_the_line_when_done():
    out = Terminal()
    progress = Progress(OutputWrapper(out), "recompute", "symbols", min_interval=0)
    progress(1, 4)
    progress(4, 4)
    progress.close()  # already ended: nothing more
    text = out.getvalue()
    assert text.startswith("\rrecompute [#######-----------------------] 1/4 symbols (25%, ")
    assert "\rrecompute [" + "#" * 30 + "] 4/4 symbols (100%, " in text
    # Ended once, after the last draw (padded with blanks if the first text, with its rate, was longer).
    assert text.endswith("\n") and text.count("\n") == 1 and text.rstrip(" \n").endswith("/s)")


def test_unknown_total_counts_and_close_ends_the_line():
    out = Terminal()
    progress = Progress(OutputWrapper(out), "fills.csv", "rows", min_interval=0)
    progress(12_345, None)
    progress(7, None)  # a shorter text clears what is left of the longer one
    progress.close()
    first, second = out.getvalue().rstrip("\n").split("\r")[1:]
    assert first.startswith("fills.csv: 12,345 rows (")
    assert second.startswith("fills.csv: 7 rows (") and len(second) >= len(first)
    assert out.getvalue().endswith("\n")


def test_redraws_are_limited_but_the_last_step_always_shows():
    out = Terminal()
    progress = Progress(OutputWrapper(out), "verify_ledger", "rows", min_interval=3600)
    for done in range(1, 1001):
        progress(done, 1000)
    assert out.getvalue().count("\r") == 2  # the first step, then the last
    assert "1,000/1,000 rows (100%" in out.getvalue()


def test_told_twice_that_it_is_done_draws_one_finished_line():
    # An import's last flush and its summary both report rows/rows; an empty ledger reports 0/0 twice.
    for done, total in ((2, 2), (0, 0)):
        out = Terminal()
        progress = Progress(OutputWrapper(out), "bars.csv", "rows", min_interval=0)
        progress(done, total)
        progress(done, total)
        progress.close()
        assert out.getvalue().count("\r") == 1 and out.getvalue().count("\n") == 1


def test_recompute_factors_ends_its_line_when_the_run_fails(monkeypatch):
    """An error mid-run: the command's error message starts on a line of its own."""
    import pytest
    from django.core.management import CommandError, call_command

    def failing_run(*, progress, **kwargs):
        progress(1, 3)  # one chunk done, then the run breaks
        raise ValueError("no such symbol: NOPE")

    monkeypatch.setattr("sizing_app.management.commands.recompute_factors.recompute_run", failing_run)
    out = Terminal()
    with pytest.raises(CommandError, match="no such symbol"):
        call_command("recompute_factors", stdout=out)
    assert out.getvalue().startswith("\rrecompute [") and out.getvalue().endswith("\n")
