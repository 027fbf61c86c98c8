"""The options' colours (``claims.toml`` and the provinces' own options) stay apart for readers
with a red-green colour vision deficiency: every pair, seen normally and through the Machado
et al. (2009) simulation of deuteranopia and protanopia (severity 1), differs by at least
MIN_DE2000 in CIEDE2000. The palette of before (red housing against dark green forest: 3.5
under protanopia) fails this check; a test keeps that so.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MIN_DE2000 = 10.0

# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear sRGB.
MACHADO = {
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
         [-0.011820, 0.042940, 0.968881]]
    ),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
         [-0.003882, -0.048116, 1.051998]]
    ),
}  # fmt: skip
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
     [0.0193339, 0.1191920, 0.9503041]]
)  # fmt: skip
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def _linear(colour: str) -> np.ndarray:
    c = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    xyz = SRGB_TO_XYZ @ np.clip(linear, 0.0, 1.0) / WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ciede2000(lab1, lab2) -> float:
    """Sharma, Wu & Dalal (2005)."""
    (L1, a1, b1), (L2, a2, b2) = lab1, lab2
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    d_big_h = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    l_mean, c_mean = (L1 + L2) / 2, (c1 + c2) / 2
    if c1 * c2 == 0:
        h_mean = h1 + h2
    elif abs(h1 - h2) <= 180:
        h_mean = (h1 + h2) / 2
    else:
        h_mean = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_t = (
        -np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
        * 2
        * np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7))
    )
    dl, dc, dh_ = (L2 - L1) / s_l, (c2 - c1) / s_c, d_big_h / s_h
    return float(np.sqrt(dl**2 + dc**2 + dh_**2 + r_t * dc * dh_))


def seen(colour: str) -> dict[str, np.ndarray]:
    """CIELAB of the colour seen normally and with each deficiency."""
    linear = _linear(colour)
    return {"normal": _lab(linear), **{k: _lab(m @ linear) for k, m in MACHADO.items()}}


def confusable(colours: dict[str, str], minimum: float = MIN_DE2000) -> list[tuple]:
    """(distance, a, b, vision) of every pair closer than ``minimum``, closest first."""
    views = {name: seen(c) for name, c in colours.items()}
    close = [
        (ciede2000(views[a][v], views[b][v]), a, b, v)
        for a, b in itertools.combinations(colours, 2)
        for v in views[a]
    ]
    return sorted(x for x in close if x[0] < minimum)


def shipped_option_colours() -> dict[str, str]:
    """Every option of claims.toml and of the provinces' configs (all can share one map)."""
    colours = {}
    for path in [ROOT / "configs" / "claims.toml", *sorted(ROOT.glob("configs/provinces/*.toml"))]:
        for name, option in tomllib.loads(path.read_text()).get("options", {}).items():
            colours[name] = option["colour"]
    return colours


@pytest.mark.parametrize(
    "lab1, lab2, expected",
    [  # Sharma et al. (2005), table 1: pairs 1, 7, 17 and 25
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ],
)
def test_ciede2000_matches_the_published_pairs(lab1, lab2, expected):
    assert ciede2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)


def test_the_simulation_folds_red_onto_green():
    # Under deuteranopia pure red and a green of the same lightness all but meet.
    red, green = seen("#ff0000"), seen("#7f7f00")
    assert ciede2000(red["normal"], green["normal"]) > 30
    assert ciede2000(red["deuteranopia"], green["deuteranopia"]) < 10


def test_no_two_options_are_confusable_with_red_green_colour_blindness():
    colours = shipped_option_colours()
    assert len(colours) >= 15  # claims.toml's options and Flevoland's barracks
    assert confusable(colours) == []


def test_the_old_palette_would_fail():
    old = {"housing_urban": "#c0392b", "forest": "#145a32", "housing_edge": "#e67e73",
           "nature": "#27ae60", "keep": "#ece7d8", "green": "#a9dfbf"}  # fmt: skip
    pairs = {(a, b) for _, a, b, _ in confusable(old)}
    assert ("housing_urban", "forest") in pairs and ("keep", "green") in pairs


def test_the_colours_keep_their_meaning():
    lab = {name: seen(c)["normal"] for name, c in shipped_option_colours().items()}
    hue = {name: np.degrees(np.arctan2(v[2], v[1])) % 360 for name, v in lab.items()}
    for housing in ("housing_urban", "housing_edge"):
        assert hue[housing] < 40 or hue[housing] > 340  # red to pink
    for water in ("water_storage", "water_storage_nature", "wind"):
        assert lab[water][2] < -10  # blue
    greens = ("forest", "urban_forest", "nature", "green_blue_veining", "green")
    assert all(lab[g][1] < -10 for g in greens)  # green
    lightness = [lab[g][0] for g in greens]
    assert all(b - a >= 8 for a, b in itertools.pairwise(lightness))  # dark to light
