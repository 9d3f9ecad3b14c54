"""MoCo: track each task's gradient with a moving average, then take MGDA-like weights on the tracks.

Paper: Heshan Devaka Fernando, Han Shen, Miao Liu, Subhajit Chaudhury, Keerthiram Murugesan and Tianyi
Chen, "Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent Approach",
ICLR 2023 (Algorithm 1).

Why. MGDA-style weights computed from one mini-batch are a *biased* estimate of the weights of the
full gradients, so stochastic MGDA need not converge. MoCo keeps a tracking variable ``y_t`` per task
that averages the stochastic gradients, and moves the weights ``λ`` by one projected gradient step of
the (regularised) min-norm problem per training step instead of solving it.

Update rule at step ``k = 1, 2, …`` with the task gradients ``h_t`` of this step::

    β_k = β / k^σ_β,   γ_k = γ / k^σ_γ
    y_t ← y_t − β_k (y_t − h_t)                          (tracking; Y has the rows y_t, starts at 0)
    λ   ← Π_Δ(λ − γ_k (Y Yᵀ + ρ I) λ)                    (one step on ½‖Yᵀλ‖² + ½ρ‖λ‖², starts at 1/T)
    d   = Yᵀλ

``Π_Δ`` is the Euclidean projection onto the simplex ``{λ ≥ 0, Σλ = 1}`` (the paper's update).
``lambda_update = "softmax"`` uses ``softmax(λ − γ_k (YYᵀ + ρI) λ)`` instead, as the authors' code and
LibMTL do. ``d`` is not a combination of this step's gradients: the method returns it as its direction,
and least-squares weights ``w = argmin ‖Gᵀw − d‖`` as its effective weights (``info["lambda"]`` holds λ).

Gradient normalisation (``normalize = True``): like the authors' code and LibMTL, each gradient is first
rescaled to the length of its loss, ``h_t = L_t g_t / (‖g_t‖ + 1e-8)`` — the tracks then live on the
scale of the losses; ``normalize = False`` tracks the raw gradients (the paper's algorithm as written).

Needs the gradient matrix (``requires="grads"``) and keeps ``Y``, a ``[T, P]`` state.

Defaults and their origin (LibMTL's arguments, from the authors' experiments): ``beta = 0.5``,
``beta_sigma = 0.5``, ``gamma = 0.1``, ``gamma_sigma = 0.5``, ``rho = 0``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from mtl_lab.validate import Flag, Number, OneOf
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses
from mtl_lab.weighting.solvers import least_squares_fit

LambdaUpdate = Literal["projection", "softmax"]
LAMBDA_UPDATES = get_args(LambdaUpdate)


def project_onto_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of ``v`` onto ``{x ≥ 0, Σx = 1}`` (sort-based: Held, Wolfe & Crowder, 1974).

    Computed in float64 (a float32 entry above 2^24 would lose the ``− 1`` below); returned in ``v``'s dtype.
    """
    w = v.double()
    u, _ = torch.sort(w, descending=True)
    cumulative = torch.cumsum(u, dim=0) - 1
    ks = torch.arange(1, w.shape[0] + 1, dtype=w.dtype, device=w.device)
    support = u - cumulative / ks > 0  # true for the first ρ entries (always for the first, in exact arithmetic)
    rho = int(support.nonzero().max()) if bool(support.any()) else 0
    threshold = cumulative[rho] / (rho + 1)
    return torch.clamp(w - threshold, min=0).to(v.dtype)


class MoCo(Weighting):
    """Tracked gradients Y (moving averages) and weights λ moved by one projected step per training step."""

    name = "moco"
    description = "MoCo: MGDA-like weights on moving averages of the task gradients (Fernando et al. 2023)."
    requires = "grads"
    gives_direction = True
    uses_losses = True
    options = {
        "beta": Number(low=0, high=1, low_open=True),  # tracking step (0 would never track)
        "beta_sigma": Number(low=0, high=1),  # its decay exponent
        "gamma": Number(low=0, low_open=True),  # step of λ
        "gamma_sigma": Number(low=0, high=1),  # its decay exponent
        "rho": Number(low=0),  # ridge on λ
        "normalize": Flag(),  # normalise the tracked gradients
        "lambda_update": OneOf(LAMBDA_UPDATES),
    }

    def __init__(
        self,
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
        normalize: bool = True,
        lambda_update: LambdaUpdate = "projection",
    ) -> None:
        super().__init__(
            beta=beta,
            beta_sigma=beta_sigma,
            gamma=gamma,
            gamma_sigma=gamma_sigma,
            rho=rho,
            normalize=normalize,
            lambda_update=lambda_update,
        )
        self.beta, self.beta_sigma = float(beta), float(beta_sigma)
        self.gamma, self.gamma_sigma = float(gamma), float(gamma_sigma)
        self.rho = float(rho)
        self.normalize = normalize
        self.lambda_update = lambda_update
        self.tracks: torch.Tensor | None = None
        self.lambdas: torch.Tensor | None = None
        self.steps = 0

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.tracks = None
        self.lambdas = None
        self.steps = 0

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        G = grads.detach()
        h = G
        if self.normalize:
            values = checked_losses(self.name, losses, self.task_names).to(G)
            h = G / (G.norm(dim=1, keepdim=True) + 1e-8) * values[:, None]
        if self.tracks is None or self.tracks.shape != G.shape:
            self.tracks = torch.zeros_like(G)
            self.lambdas = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=G.dtype, device=G.device)
        self.tracks, self.lambdas = self.tracks.to(G), self.lambdas.to(G)
        self.steps += 1
        beta_k = self.beta / self.steps**self.beta_sigma
        gamma_k = self.gamma / self.steps**self.gamma_sigma
        self.tracks = self.tracks - beta_k * (self.tracks - h)
        Y = self.tracks
        gradient = Y @ (Y.T @ self.lambdas) + self.rho * self.lambdas  # (YYᵀ + ρI) λ without the [T, T] product
        moved = self.lambdas - gamma_k * gradient
        self.lambdas = project_onto_simplex(moved) if self.lambda_update == "projection" else torch.softmax(moved, 0)
        direction = Y.T @ self.lambdas
        weights, residual = least_squares_fit(G, direction)
        info = {"lambda": self.lambdas.tolist(), "lstsq_residual": residual}
        return Combination(weights, direction, info=info)

    def config(self) -> dict:
        return {"name": self.name, "beta": self.beta, "beta_sigma": self.beta_sigma, "gamma": self.gamma,
                "gamma_sigma": self.gamma_sigma, "rho": self.rho, "normalize": self.normalize,
                "lambda_update": self.lambda_update}

    def state_dict(self) -> dict:
        def copy(t: torch.Tensor | None):
            return None if t is None else t.detach().cpu().clone()

        return {"tracks": copy(self.tracks), "lambdas": copy(self.lambdas), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        def load(value):
            return None if value is None else torch.as_tensor(value).clone()

        self.tracks, self.lambdas = load(state.get("tracks")), load(state.get("lambdas"))
        self.steps = int(state.get("steps", 0))
