"""Two regression tasks whose relatedness is a dial: the synthetic data of the MMoE paper.

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, section 3.2:

1. Draw two orthonormal vectors ``u1, u2`` in ``R^d``.
2. Given a scale ``c`` and a correlation score ``ρ`` in ``[-1, 1]``:
   ``w1 = c·u1``, ``w2 = c·(ρ·u1 + sqrt(1 - ρ²)·u2)``.
3. Draw inputs ``x ~ N(0, I_d)``.
4. ``y_k = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i) + ε_k`` for ``k = 1, 2``, ``ε_k ~ N(0, noise²)``.

**ρ is the cosine of the two weight vectors, not the correlation of the labels.** The sines make the
labels a non-linear function of ``w_kᵀx``, so their Pearson correlation is some other, usually
smaller, number that only grows with ρ; the paper measures it afterwards (its Figure 2) and so does
this module: ``data.info["label_correlation"]``. In the purely linear case it would be exactly ρ.

Constants and where they come from:

* ``d = 100`` — the input dimension of the paper's experiments (section 5.1);
* ``noise = 0.1`` — the paper's ``ε ~ N(0, 0.01)``, read as variance 0.01, i.e. standard deviation 0.1;
* ``n = 10000`` — the paper draws 10k points per task correlation for its Figure 2;
* ``c = 1``, ``m = 10`` and ``α_i, β_i ~ N(0, 1)`` — the paper calls ``c``, ``α_i``, ``β_i`` "given
  parameters" without listing values; these are our choices. ``α``, ``β`` are drawn once per dataset.

Everything comes from one ``torch.Generator`` seeded with ``seed``, in this order: ``u1, u2`` (QR of a
Gaussian ``d × 2`` matrix), ``α``, ``β``, then ``x`` and the noise. The weights do not depend on ρ, so
datasets with the same seed and different ρ share ``u1, u2, α, β, x, ε``: a controlled experiment.
:func:`task_parameters` returns the weights and sine constants of a seed.

Inputs ``x`` are ``[n, d]`` and already standard normal, so they are left raw by default
(``normalize=False``). Targets are left on the paper's scale. Tasks ``y1``, ``y2``: regression of one
value (MSE loss, MSE metric ↓).
"""

from __future__ import annotations

import math

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data, split_indices

SOURCE = "generated: Ma et al., KDD 2018 (MMoE), section 3.2"


def _check(correlation: float, d: int, m: int, c: float) -> None:
    if isinstance(correlation, bool) or not isinstance(correlation, (int, float)) or not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation!r}")
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"d must be an int ≥ 2 (two orthogonal directions are needed), got {d!r}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise ValueError(f"m (the number of sine terms) must be an int ≥ 0, got {m!r}")
    if not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"c (the scale of the weight vectors) must be > 0, got {c!r}")


def _draw_parameters(
    correlation: float, d: int, m: int, c: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    q, _ = torch.linalg.qr(torch.randn(d, 2, generator=generator, dtype=torch.float64))
    u1, u2 = q[:, 0], q[:, 1]
    w1 = c * u1
    w2 = c * (correlation * u1 + math.sqrt(1.0 - correlation**2) * u2)
    alpha = torch.randn(m, generator=generator, dtype=torch.float64)
    beta = torch.randn(m, generator=generator, dtype=torch.float64)
    return {"w1": w1, "w2": w2, "alpha": alpha, "beta": beta}


def task_parameters(
    correlation: float, d: int = 100, m: int = 10, c: float = 1.0, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The generating constants of ``mmoe_synthetic(correlation, d=d, m=m, c=c, seed=seed)``.

    Returns float64 tensors ``w1, w2`` (``[d]``, with ``cos(w1, w2) = correlation``) and ``alpha``,
    ``beta`` (``[m]``).
    """
    _check(correlation, d, m, c)
    return _draw_parameters(correlation, d, m, c, torch.Generator().manual_seed(seed))


def response(z: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The noiseless label ``z + Σ_i sin(α_i·z + β_i)`` of projections ``z = wᵀx`` (any shape)."""
    return z + torch.sin(alpha * z.unsqueeze(-1) + beta).sum(dim=-1)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two equally long 1-D tensors."""
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def mmoe_synthetic(
    correlation: float,
    n: int = 10000,
    d: int = 100,
    m: int = 10,
    c: float = 1.0,
    noise: float = 0.1,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    normalize: bool = False,
) -> MultiTaskData:
    """Two regression tasks with a controlled cosine ρ between their weight vectors (MMoE, KDD 2018).

    ``correlation`` is ρ in ``[-1, 1]``; ``noise`` is the standard deviation of ``ε``; ``fractions``
    are the train/val/test shares of the ``n`` rows (a seeded random split).
    """
    _check(correlation, d, m, c)
    if isinstance(n, bool) or not isinstance(n, int) or n < 3:
        raise ValueError(f"n must be an int ≥ 3 (one row per split at least), got {n!r}")
    if not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"noise (the standard deviation of ε) must be ≥ 0, got {noise!r}")
    generator = torch.Generator().manual_seed(seed)
    params = _draw_parameters(correlation, d, m, c, generator)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    eps = noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    y1 = response(x @ params["w1"], params["alpha"], params["beta"]) + eps[:, 0]
    y2 = response(x @ params["w2"], params["alpha"], params["beta"]) + eps[:, 1]

    train_idx, val_idx, test_idx = split_indices(n, fractions, seed)
    whole = Split(x.float(), {"y1": y1.float().reshape(n, 1), "y2": y2.float().reshape(n, 1)})
    tasks = [
        T.regression("y1", 1, description="y1 = w1·x + Σ sin(α_i w1·x + β_i) + ε1"),
        T.regression("y2", 1, description="y2 = w2·x + Σ sin(α_i w2·x + β_i) + ε2"),
    ]
    w1, w2 = params["w1"], params["w2"]
    info = {
        "source": SOURCE,
        "correlation": float(correlation),
        "weight_cosine": float(w1 @ w2 / (w1.norm() * w2.norm())),
        "label_correlation": pearson(y1, y2),
        "constants": {"n": n, "d": d, "m": m, "c": c, "noise": noise, "alpha_beta": "N(0, 1), drawn per seed"},
        "fractions": list(fractions),
    }
    return make_data(
        "mmoe_synthetic",
        tasks,
        whole.take(train_idx),
        whole.take(val_idx),
        whole.take(test_idx),
        normalize=normalize,
        info=info,
    )
