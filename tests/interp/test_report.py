import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from interp.report import Report, write_index


def make_report(value=3):
    report = Report("demo", "A demonstration", config={"seed": 7, "size": 2})
    section = report.section("Numbers", "Two numbers and their **sum**.")
    section.table(pd.DataFrame({"a": [1.5, 2.0], "b": [2, 3]}), "numbers", "two rows")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    section.figure(fig, "line", "A rising line.")
    report.headline("sum", value, "a + b")
    return report


def test_save_writes_every_artifact(tmp_path):
    folder = make_report().save(tmp_path)
    assert folder == tmp_path / "demo"
    for name in ["report.md", "report.html", "results.json", "numbers.csv", "figures/line.png"]:
        assert (folder / name).is_file(), f"report did not write {name}"
    results = json.loads((folder / "results.json").read_text())
    assert results["headline"] == {"sum": 3}
    assert results["config"] == {"seed": 7, "size": 2} and results["seed"] == 7
    assert "torch" in results["versions"] and results["elapsed_seconds"] >= 0
    import torch

    assert results["machine"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert results["machine"]["cpu"] and results["machine"]["cpus"] >= 1
    assert pd.read_csv(folder / "numbers.csv").shape == (2, 2)
    assert (folder / "figures/line.png").read_bytes()[:4] == b"\x89PNG"


def test_html_is_self_contained(tmp_path):
    html = (make_report().save(tmp_path) / "report.html").read_text()
    assert "data:image/png;base64," in html, "figures must be inlined so the page works offline"
    assert "<table>" in html and "<strong>sum</strong>" in html
    assert "src=\"figures/" not in html and "http" not in html.replace("http-equiv", "")


def test_interrupted_save_keeps_previous_report(tmp_path, monkeypatch):
    make_report(value=3).save(tmp_path)
    broken = make_report(value=4)

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Report, "to_html", explode)
    with pytest.raises(KeyboardInterrupt):
        broken.save(tmp_path)
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["headline"]["sum"] == 3, "an interrupted save replaced the good report"
    assert [p.name for p in tmp_path.iterdir()] == ["demo"], "staging folder left behind"


def test_index_links_every_report(tmp_path):
    make_report().save(tmp_path)
    other = Report("other", "Another report", config={"seed": 0})
    other.headline("answer", 42)
    other.save(tmp_path)
    index = write_index(tmp_path).read_text()
    assert 'href="demo/report.html"' in index and 'href="other/report.html"' in index
    assert "42" in index


def test_bad_item_names_are_refused():
    with pytest.raises(ValueError, match="file name"):
        Report("bad name", "x")
    with pytest.raises(ValueError, match="file name"):
        Report("ok", "x").section("s").table(pd.DataFrame(), "a/b")


def test_index_follows_the_given_order(tmp_path):
    for name in ("alpha", "beta"):
        Report(name, name.title(), config={"seed": 0}).save(tmp_path)
    index = write_index(tmp_path, order=["beta", "alpha"]).read_text()
    assert index.index("beta/report.html") < index.index("alpha/report.html")


def test_token_names_survive_in_html(tmp_path):
    report = Report("tokens", "Tokens", config={"seed": 0})
    section = report.section("Names", "The prompt starts with <bos> and `x<y` stays code.")
    section.table(pd.DataFrame({"token": ["<first>", "<last>"]}), "tokens", "names shown as <first> <last>")
    html = (report.save(tmp_path) / "report.html").read_text()
    assert html.count("&lt;first&gt;") + html.count("&lt;first>") >= 2, "a <token> was swallowed as an HTML tag"
    assert "&lt;bos" in html and "<code>x&lt;y</code>" in html


def test_pipes_in_cells_do_not_split_rows(tmp_path):
    report = Report("pipes", "Pipes", config={"seed": 0})
    report.headline("max_abs_cos", 0.2, "largest |cos| among vectors")
    report.section("t").table(pd.DataFrame({"what": ["|a - b|"], "value": [1]}), "pipes")
    html = (report.save(tmp_path) / "report.html").read_text()
    assert "largest |cos| among vectors</td>" in html, "a '|' in a headline description split its row"
    assert ">|a - b|</td>" in html


def test_a_list_right_after_a_paragraph_renders_as_a_list(tmp_path):
    report = Report("lists", "Lists", config={"seed": 0})
    report.section("s", "Two results:\n- first: 1\n- second: 2")
    html = (report.save(tmp_path) / "report.html").read_text()
    assert html.count("<li>") == 2, "list items ran on inside the paragraph"


def test_captions_and_cells_render_markup_characters_literally(tmp_path):
    report = Report("marks", "Marks", config={"seed": 0})
    section = report.section("S", "Prose keeps **bold**.")
    section.table(pd.DataFrame({"w_i": ["D* = 0.5", "|cos| <bos>", "a_b_c", "_x_"]}), "cells",
                  "D* and W_i for <first> |x|")
    fig, ax = plt.subplots()
    section.figure(fig, "fig", "D* against 1/(1-S), <last> and [a] `code_x*`")
    report.headline("d_star", 0.5, "D* at *S* = 0.9")
    md = report.to_markdown()
    assert "D\\* and W_i for \\<first> |x|" in md and "D\\* against" in md and "`code_x*`" in md, md
    assert "\\|cos\\| \\<bos>" in md, md
    page = report.to_html().replace("<wbr>", "")  # break opportunities in column names are invisible
    for literal in ("D* and W_i for &lt;first&gt; |x|", "D* = 0.5", ">_x_<", "|cos| &lt;bos&gt;", "a_b_c", "w_i",
                    "D* against 1/(1-S), &lt;last&gt; and [a] <code>code_x*</code>", "D* at *S* = 0.9"):
        assert literal in page, f"{literal!r} did not survive Markdown: {page[page.index('<body>'):][:1500]}"
    assert "<em>S</em>" not in page and "Prose keeps <strong>bold</strong>" in page


def test_figure_alt_text_shows_the_caption_literally(tmp_path):
    report = Report("alt", "Alt text", config={"seed": 0})
    fig, ax = plt.subplots()
    caption = "D* = 2/5 for |W_i|, _x_ and <first> [a] at *S* < 0.9, `code_x*`\nnext line"
    report.section("S", "").figure(fig, "fig", caption)
    page = (report.save(tmp_path) / "report.html").read_text()
    alt = "D* = 2/5 for |W_i|, _x_ and &lt;first&gt; [a] at *S* &lt; 0.9, code_x* next line"
    assert f'alt="{alt}"' in page, page[page.index("<img"):][:300]
    assert "![D\\* = 2/5 for |W_i|, \\_x\\_ and \\<first> \\[a\\]" in report.to_markdown()


def test_timing_note_counts_subject_training(tmp_path):
    report = make_report()
    report.elapsed_seconds, report.preset = 700.0, "full"
    report.subject_training = [{"name": "facts", "quick": False, "seed": 0, "seconds": 647.0}]
    folder = report.save(tmp_path)
    results = json.loads((folder / "results.json").read_text())
    assert results["elapsed_seconds"] == 700.0 and results["subject_training_seconds"] == 647.0
    assert results["preset"] == "full" and results["date"]
    assert "Ran in 700 s, including 647 s training the zoo subject `facts`" in (folder / "report.md").read_text()
    index = write_index(tmp_path).read_text()
    assert "700 s" in index and "647 s training" in index


def test_index_notes_reports_from_different_runs(tmp_path):
    for name, preset in (("one", "quick"), ("two", "full")):
        report = Report(name, name, config={"seed": 0})
        report.preset = preset
        report.headline("x", 1, "the x")
        report.save(tmp_path)
    index = write_index(tmp_path).read_text()
    assert "2 different runs" in index and "the x" in index


def test_wide_tables_are_set_smaller_to_fit_the_page():
    from interp.report import WIDE_COLUMNS

    report = Report("wide", "Wide")
    section = report.section("S")
    section.table(pd.DataFrame({f"c{i}": [1] for i in range(WIDE_COLUMNS + 1)}), "wide")
    section.table(pd.DataFrame({f"c{i}": [1] for i in range(WIDE_COLUMNS)}), "narrow")
    page = report.to_html()
    assert page.count('<table class="wide">') == 1 and page.count("<table>") == 1, "only the wide table shrinks"
