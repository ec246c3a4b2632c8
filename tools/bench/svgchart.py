"""svgchart.py: two small SVG charts (grouped bars, lines) drawn with the
standard library only, so benchmark suites can commit a picture beside
their CSV without matplotlib."""

from xml.sax.saxutils import escape

COLOURS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"]
W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 160, 40, 50


def _nice_max(v):
    """Round v up to 1, 2 or 5 times a power of ten (an axis end)."""
    if v <= 0:
        return 1.0
    p = 1.0
    while p * 10 <= v:
        p *= 10
    while p > v:
        p /= 10
    for m in (1, 2, 5, 10):
        if m * p >= v:
            return m * p
    return 10 * p


def _frame(title, ylabel, ymax, target):
    """SVG header, title, y axis with gridlines, optional target line."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">'
        f"{escape(title)}</text>",
        f'<text x="14" y="{TOP + (H - TOP - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + (H - TOP - BOTTOM) / 2})">'
        f"{escape(ylabel)}</text>",
    ]
    ph = H - TOP - BOTTOM
    for i in range(6):
        v = ymax * i / 5
        y = TOP + ph - ph * i / 5
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{v:g}</text>')
    if target is not None and target <= ymax:
        y = TOP + ph - ph * target / ymax
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}" stroke="#c00" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{W - RIGHT + 4}" y="{y + 4:.1f}" fill="#c00">'
                   f"target {target:g}</text>")
    return out


def _legend(names):
    """Colour key to the right of the plot."""
    out = []
    for i, n in enumerate(names):
        y = TOP + 20 + 18 * i
        c = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{W - RIGHT + 10}" y="{y - 9}" width="10" '
                   f'height="10" fill="{c}"/>')
        out.append(f'<text x="{W - RIGHT + 24}" y="{y}">{escape(n)}</text>')
    return out


def bars(path, title, ylabel, groups, series, values, target=None):
    """Grouped bar chart: values[s][g] is series s in group g."""
    ymax = _nice_max(max([v for row in values for v in row] +
                         [target or 0]) * 1.05)
    out = _frame(title, ylabel, ymax, target)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    gw = pw / len(groups)
    bw = gw * 0.8 / len(series)
    for g, gname in enumerate(groups):
        x0 = LEFT + g * gw + gw * 0.1
        for s in range(len(series)):
            v = values[s][g]
            h = ph * v / ymax
            x = x0 + s * bw
            out.append(f'<rect x="{x:.1f}" y="{TOP + ph - h:.1f}" '
                       f'width="{bw - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLOURS[s % len(COLOURS)]}"/>')
            out.append(f'<text x="{x + bw / 2 - 1:.1f}" '
                       f'y="{TOP + ph - h - 3:.1f}" text-anchor="middle" '
                       f'font-size="9">{v:.3g}</text>')
        out.append(f'<text x="{LEFT + g * gw + gw / 2:.1f}" '
                   f'y="{H - BOTTOM + 16}" text-anchor="middle">'
                   f"{escape(gname)}</text>")
    out += _legend(series)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def lines(path, title, xlabel, ylabel, series, points, ymin=0.0, target=None):
    """Line chart: points[s] is a list of (x, y) for series s."""
    xs = [x for pts in points for x, _ in pts]
    ys = [y for pts in points for _, y in pts]
    xmin, xmax = min(xs), max(xs)
    if xmax == xmin:
        xmax = xmin + 1
    top = _nice_max(max(ys + [target or 0]))
    out = _frame(title, ylabel, top, target) if ymin == 0 else None
    if out is None:
        # A zoomed y axis: relabel the gridlines from ymin to top.
        out = _frame(title, ylabel, 1.0, None)
        ph = H - TOP - BOTTOM
        out = [o for o in out if 'text-anchor="end"' not in o]
        for i in range(6):
            v = ymin + (top - ymin) * i / 5
            y = TOP + ph - ph * i / 5
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" '
                       f'text-anchor="end">{v:.3g}</text>')
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + pw * (x - xmin) / (xmax - xmin)

    def py(y):
        return TOP + ph - ph * (y - ymin) / (top - ymin)

    for x in sorted(set(xs)):
        out.append(f'<text x="{px(x):.1f}" y="{H - BOTTOM + 16}" '
                   f'text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 10}" '
               f'text-anchor="middle">{escape(xlabel)}</text>')
    for s, pts in enumerate(points):
        c = COLOURS[s % len(COLOURS)]
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{c}" '
                   f'stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" '
                       f'fill="{c}"/>')
    out += _legend(series)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
