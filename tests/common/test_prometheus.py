from __future__ import annotations

from common.prometheus import render


def test_render_types_help_and_escaped_labels() -> None:
    page = render(
        [
            ("x_total", {"link": 'a"b\\c'}, 3),
            ("x_total", {"link": "d"}, 4.5),
            ("depth", {}, 0),
        ],
        {"x_total": "things done"},
    )
    assert page.splitlines() == [
        "# HELP x_total things done",
        "# TYPE x_total counter",
        'x_total{link="a\\"b\\\\c"} 3',
        'x_total{link="d"} 4.5',
        "# HELP depth depth",
        "# TYPE depth gauge",
        "depth 0",
    ]
