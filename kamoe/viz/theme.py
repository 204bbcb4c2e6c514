"""Light and dark palettes for every figure builder, and the layout that applies one.

Every builder in ``kamoe.viz`` takes ``theme="light" | "dark"`` (Streamlit's
``st.context.theme.type``) and sets its own background, text, grid and trace colours from the
palette, so a figure reads the same whichever way the page shows it (``st.plotly_chart`` with
``theme="streamlit"`` or ``None``): explicit layout values win over any template. Backgrounds
are Streamlit's own (white, #0e1117); text colours reach WCAG contrast 4.5 on them, data colours
3 (``contrast`` computes the ratio; the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb

THEMES = ("light", "dark")


@dataclass(frozen=True)
class Palette:
    """The colours of one theme (hex strings; ``edge_rgb`` / ``curve_rgb`` as "r,g,b")."""

    name: str
    background: str
    text: str
    muted: str
    grid: str
    edge_rgb: str  # network edges, drawn with opacity = importance
    curve_rgb: str  # learned edge functions
    spline: str  # the spline part of a B-spline edge and its control points
    base: str  # the base part w_base * act(x)
    fitted: str  # a library function fitted to an edge (snapped edges)
    density: str  # data density bars
    node_fill: str
    categorical: tuple[str, ...]  # experts, groups
    sequential: tuple[str, ...]  # heat maps, low to high (low = near the background)
    points: tuple[str, ...]  # a third variable on scatter points: every end stays visible

    @property
    def curve(self) -> str:
        return f"rgb({self.curve_rgb})"

    def series(self, k: int) -> str:
        """The k-th categorical colour (cycling)."""
        return self.categorical[k % len(self.categorical)]

    def colorscale(self, colours: tuple[str, ...] | None = None) -> list[list[float | str]]:
        """A plotly colour scale from ``colours`` (default: the sequential heat-map colours)."""
        colours = colours or self.sequential
        n = len(colours) - 1
        return [[i / n, c] for i, c in enumerate(colours)]


VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
           "#6ece58", "#b5de2b", "#fde725")

PALETTES = {
    "light": Palette(
        name="light", background="#ffffff", text="#262730", muted="#5d6070",
        grid="rgba(38,39,48,0.12)", edge_rgb="38,39,48", curve_rgb="31,101,172",
        spline="#c2410c", base="#5d6070", fitted="#b91c1c", density="#3f7f7a",
        node_fill="#ffffff",
        # Tableau-like hues darkened until each reaches 3:1 on white.
        categorical=("#1f65ac", "#c2410c", "#2e7d32", "#b91c1c", "#7b3fa0", "#8a5a2b",
                     "#c0267d", "#5d6070", "#7a7a00", "#00788a"),
        sequential=("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"),
        points=VIRIDIS,
    ),
    "dark": Palette(
        name="dark", background="#0e1117", text="#fafafa", muted="#a8abb8",
        grid="rgba(250,250,250,0.14)", edge_rgb="236,236,242", curve_rgb="110,180,255",
        spline="#ffa657", base="#a8abb8", fitted="#ff7b72", density="#5fc4bb",
        node_fill="#0e1117",
        categorical=("#6eb4ff", "#ffa657", "#7ee787", "#ff7b72", "#d2a8ff", "#e3b341",
                     "#f778ba", "#a8abb8", "#c9d14e", "#56d4dd"),
        sequential=("#161b22", "#1f3b5c", "#2f6ea8", "#62a8f0", "#cfe6ff"),
        points=VIRIDIS[3:],  # Viridis' darkest purples vanish on a near-black page
    ),
}


def palette(theme: str = "light") -> Palette:
    """The palette of ``theme`` ("light" or "dark")."""
    if theme not in PALETTES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {theme!r}")
    return PALETTES[theme]


def _parse(colour: str) -> tuple[tuple[float, float, float], float]:
    """((r, g, b) in 0..255, alpha) of a "#rrggbb", "rgb(...)" or "rgba(...)" colour."""
    c = colour.strip()
    if c.startswith("#"):
        return tuple(float(v) for v in hex_to_rgb(c)), 1.0  # type: ignore[return-value]
    if c.startswith("rgb"):
        parts = [float(v) for v in c[c.index("(") + 1:c.index(")")].split(",")]
        return (parts[0], parts[1], parts[2]), (parts[3] if len(parts) > 3 else 1.0)
    raise ValueError(f"cannot read colour {colour!r}")


def blend(colour: str, background: str) -> tuple[float, float, float]:
    """The opaque colour that ``colour`` (maybe rgba) shows on ``background``."""
    fg, a = _parse(colour)
    bg, _ = _parse(background)
    return tuple(a * f + (1 - a) * b for f, b in zip(fg, bg, strict=True))  # type: ignore


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour with channels in 0..255."""
    def lin(v: float) -> float:
        v = v / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(colour: str, background: str) -> float:
    """WCAG contrast ratio (1..21) of ``colour`` (alpha blended) on ``background``."""
    a, b = luminance(blend(colour, background)), luminance(_parse(background)[0])
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def rgba(rgb: str, alpha: float) -> str:
    return f"rgba({rgb},{alpha:.3f})"


TITLE_SIZE = 16
LABEL_SIZE = 13  # subplot titles and axis titles: readable when projected


def apply_theme(fig: go.Figure, theme: str = "light") -> go.Figure:
    """Set background, fonts, axes, legend, hover and subplot titles from the palette."""
    p = palette(theme)
    fig.update_layout(
        template="plotly_white" if theme == "light" else "plotly_dark",
        paper_bgcolor=p.background, plot_bgcolor=p.background,
        font={"color": p.text, "size": 12},
        title_font={"color": p.text, "size": TITLE_SIZE},
        title_subtitle_font={"color": p.muted, "size": LABEL_SIZE},
        legend={"font": {"color": p.text}, "bgcolor": "rgba(0,0,0,0)"},
        hoverlabel={"bgcolor": p.background, "font": {"color": p.text},
                    "bordercolor": p.muted},
    )
    axis = {"gridcolor": p.grid, "linecolor": p.muted, "zerolinecolor": p.grid,
            "tickfont": {"color": p.text}, "title_font": {"color": p.text, "size": LABEL_SIZE}}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    for a in fig.layout.annotations:  # subplot titles; a builder's own colours are kept
        if a.font.color is None:
            a.font.color = p.text
        if a.font.size is None:
            a.font.size = LABEL_SIZE
    fig.update_coloraxes(colorbar={"tickfont": {"color": p.text},
                                   "title": {"font": {"color": p.text}}})
    for trace in fig.data:
        if trace.type == "heatmap" and getattr(trace, "colorbar", None) is not None:
            trace.colorbar.tickfont = {"color": p.text}
            trace.colorbar.title.font = {"color": p.text}
    if fig.layout.sliders:
        for s in fig.layout.sliders:
            s.font = {"color": p.text}
            s.currentvalue.font = {"color": p.text}
            s.bgcolor = p.grid
            s.activebgcolor = p.muted
            s.bordercolor = p.muted
            s.tickcolor = p.muted
    if fig.layout.updatemenus:
        for m in fig.layout.updatemenus:
            m.font = {"color": p.text}
            m.bgcolor = p.background
            m.bordercolor = p.muted
    return fig
