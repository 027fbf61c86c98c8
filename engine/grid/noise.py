"""Deterministic smooth noise, a function of position in metres and a seed.

Generated layers (patches of forest, nature, greenhouses) need texture that looks natural,
comes out the same on every machine, and does not depend on tiles or resolution. Value noise
on a lattice fixed in metres does all three: a point's value is a hash of the lattice corners
around it, smoothly blended. No random generator state is involved.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fbm", "value_noise"]

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0xBF58476D1CE4E5B9)
_M4 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, nogil=True, inline="always")
def _hash01(ix: np.int64, iy: np.int64, seed: np.uint64) -> float:
    # splitmix64 finaliser over the mixed lattice coordinates: well spread, cheap, portable.
    h = np.uint64(ix) * _M1 ^ np.uint64(iy) * _M2 ^ seed
    h = (h ^ (h >> np.uint64(30))) * _M3
    h = (h ^ (h >> np.uint64(27))) * _M4
    h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, nogil=True)
def _value_noise(x, y, spacing, seed, weight, out):
    for i in range(y.shape[0]):
        fy = y[i] / spacing
        iy = np.int64(np.floor(fy))
        ty = fy - iy
        ty = ty * ty * (3.0 - 2.0 * ty)
        for j in range(x.shape[0]):
            fx = x[j] / spacing
            ix = np.int64(np.floor(fx))
            tx = fx - ix
            tx = tx * tx * (3.0 - 2.0 * tx)
            a = _hash01(ix, iy, seed)
            b = _hash01(ix + 1, iy, seed)
            c = _hash01(ix, iy + 1, seed)
            d = _hash01(ix + 1, iy + 1, seed)
            top = a + (b - a) * tx
            bottom = c + (d - c) * tx
            out[i, j] += weight * (top + (bottom - top) * ty)


def value_noise(x: np.ndarray, y: np.ndarray, spacing: float, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1) at the points (y[:, None], x[None, :]), lattice ``spacing`` m."""
    out = np.zeros((len(y), len(x)), np.float64)
    _value_noise(
        np.asarray(x, np.float64),
        np.asarray(y, np.float64),
        float(spacing),
        np.uint64(seed & 0xFFFFFFFFFFFFFFFF),
        1.0,
        out,
    )
    return out


def fbm(x: np.ndarray, y: np.ndarray, spacing: float, seed: int, octaves: int = 3) -> np.ndarray:
    """Fractal noise: octaves of value noise at spacing, spacing/2, ... with halving weight.

    Rescaled to keep mean 0.5 and a spread close to uniform noise's, float64 in about [0, 1].
    """
    out = np.zeros((len(y), len(x)), np.float64)
    total = 0.0
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    for o in range(octaves):
        w = 0.5**o
        octave_seed = np.uint64((seed * 1_000_003 + o) & 0xFFFFFFFFFFFFFFFF)
        _value_noise(xs, ys, spacing / 2**o, octave_seed, w, out)
        total += w
    out /= total
    # Summing octaves narrows the spread around 0.5; stretch it back so thresholds read as
    # rough area fractions. The factor is fixed, not fitted to the data, to stay tile-free.
    spread = np.sqrt(sum(0.25**o for o in range(octaves))) / total
    return np.clip(0.5 + (out - 0.5) / spread * 0.55, 0.0, 1.0)
