"""The console's one chart module (console/charts.py), as the statistics page uses it: many days with short labels
under the axis, values past the palette folded into «andre verdier», the legend in words with each total, and a
table with sums that leaves out the empty days. (Drawn stacks and escaping: tests/test_console_lifecycle.py.)"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from regelmotor.console.charts import (
    MAX_AXIS_LABELS,
    OTHERS,
    OTHERS_NAME,
    PALETTE,
    BarChart,
    Series,
    at_most,
    chart_legend,
    chart_svg,
    chart_table,
)

SVG = "{http://www.w3.org/2000/svg}"


def _days_chart(series: tuple[Series, ...], days: int = 30) -> BarChart:
    return BarChart("Per dag", tuple(f"{n + 1}. mai" for n in range(days)), series, category_heading="Dag",
                    stacked=True, labels=tuple(f"{n + 1}.5." for n in range(days)), most_categories=400)


def test_values_past_the_palette_are_folded_into_one_grey_series_with_their_sums() -> None:
    many = [Series(f"v{n}", (float(n), 1.0)) for n in range(len(PALETTE) + 2)]
    folded = at_most(many)
    assert [s.name for s in folded] == [f"v{n}" for n in range(len(PALETTE) - 1)] + [OTHERS_NAME]
    assert folded[-1].values == (float(sum(range(len(PALETTE) - 1, len(PALETTE) + 2))), 3.0)
    assert at_most(many[:3]) == tuple(many[:3])
    chart = BarChart("x", ("a", "b"), folded, stacked=True)
    fills = {r.get("fill") for r in ElementTree.fromstring(str(chart_svg(chart))).iter(f"{SVG}rect")}
    assert OTHERS in fills and set(PALETTE[:len(PALETTE) - 1]) <= fills


def test_a_month_of_days_is_drawn_with_a_few_labels_and_a_piece_only_where_there_were_decisions() -> None:
    ja = tuple(3.0 if n == 4 else 0.0 for n in range(30))
    nei = tuple(2.0 if n in (4, 20) else 0.0 for n in range(30))
    chart = _days_chart((Series("ja", ja), Series("nei", nei)))
    svg = ElementTree.fromstring(str(chart_svg(chart, legend=False)))
    pieces = [r.findtext(f"{SVG}title") or "" for r in svg.iter(f"{SVG}rect")]
    assert sorted(pieces) == ["21. mai, nei: 2", "5. mai, ja: 3", "5. mai, nei: 2"]
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.text and t.text.endswith(".5.")]
    assert labels[0] == "1.5." and 1 < len(labels) <= MAX_AXIS_LABELS
    assert not BarChart("x", chart.categories, chart.series).drawable  # grouped bars stop at a dozen


def test_the_legend_names_each_colour_with_its_total_and_the_table_sums_the_days_that_had_any() -> None:
    chart = _days_chart((Series("ja", (1.0, 0.0, 4.0)), Series("nei", (2.0, 0.0, 0.0))), days=3)
    legend = "".join(ElementTree.fromstring(str(chart_legend(chart))).itertext())
    assert "ja: 5" in legend and "nei: 2" in legend
    table = ElementTree.fromstring(str(chart_table(chart, sums=True, omit_empty=True)))
    assert [[cell.text for cell in row] for row in table.iter("tr")] == [
        ["Dag", "ja", "nei", "Sum"], ["1. mai", "1", "2", "3"], ["3. mai", "4", "0", "4"], ["Sum", "5", "2", "7"]]
