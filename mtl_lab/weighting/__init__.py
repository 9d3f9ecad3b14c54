"""Loss-weighting and gradient-manipulation methods, one module each, behind one protocol.

* :data:`METHODS` maps every registry name to its class.
* :func:`available` lists ``(name, one-line description)`` for menus and tooltips.
* :func:`create` builds a method from its name and hyper-parameters, with clear errors.
* :func:`aggregate` is the functional face of every method: a gradient matrix ``G[T, P]`` in, the
  combined update direction ``d[P]`` out (``Gᵀw`` for loss-weighting methods).
"""

from __future__ import annotations

import torch

from mtl_lab import validate
from mtl_lab.weighting.base import REQUIRES, Combination, StepContext, Weighting
from mtl_lab.weighting.equal import Equal
from mtl_lab.weighting.static import Static

# loss-weighting imports (start)
# isort: split
from mtl_lab.weighting.auto_lambda import AutoLambda
from mtl_lab.weighting.cosmos import COSMOS
from mtl_lab.weighting.db_mtl import DBMTL
from mtl_lab.weighting.dwa import DWA
from mtl_lab.weighting.famo import FAMO
from mtl_lab.weighting.gls import GLS
from mtl_lab.weighting.gradnorm import GradNorm
from mtl_lab.weighting.imtl_l import IMTLL
from mtl_lab.weighting.inverse_loss import InverseLoss
from mtl_lab.weighting.pbi import PBI
from mtl_lab.weighting.rlw import RLW
from mtl_lab.weighting.scale_invariant import ScaleInvariant
from mtl_lab.weighting.stch import STCH
from mtl_lab.weighting.uncertainty import Uncertainty

# isort: split
# loss-weighting imports (end)
# gradient-manipulation imports (start)
# isort: split
from mtl_lab.weighting.aligned_mtl import AlignedMTL
from mtl_lab.weighting.cagrad import CAGrad
from mtl_lab.weighting.config_momentum import MomentumConFIG
from mtl_lab.weighting.conflict_free import ConFIG
from mtl_lab.weighting.cr_mogm import CRMOGM
from mtl_lab.weighting.dualproj import DualProj
from mtl_lab.weighting.epo import EPO
from mtl_lab.weighting.excess_mtl import ExcessMTL
from mtl_lab.weighting.fairgrad import FairGrad
from mtl_lab.weighting.graddrop import GradDrop
from mtl_lab.weighting.gradvac import GradVac
from mtl_lab.weighting.imtl_g import IMTLG
from mtl_lab.weighting.mgda import MGDA, MGDAUB
from mtl_lab.weighting.moco import MoCo
from mtl_lab.weighting.modo import MoDo
from mtl_lab.weighting.nash_mtl import NashMTL
from mtl_lab.weighting.ntkmtl import NTKMTL
from mtl_lab.weighting.pareto_mtl import ParetoMTL
from mtl_lab.weighting.pcd import PCD
from mtl_lab.weighting.pcgrad import PCGrad
from mtl_lab.weighting.sdmgrad import SDMGrad
from mtl_lab.weighting.upgrad import UPGrad

# isort: split
# gradient-manipulation imports (end)

METHODS: dict[str, type[Weighting]] = {
    Equal.name: Equal,
    Static.name: Static,
    # loss-weighting entries (start)
    InverseLoss.name: InverseLoss,
    DWA.name: DWA,
    Uncertainty.name: Uncertainty,
    GradNorm.name: GradNorm,
    RLW.name: RLW,
    GLS.name: GLS,
    IMTLL.name: IMTLL,
    FAMO.name: FAMO,
    DBMTL.name: DBMTL,
    ScaleInvariant.name: ScaleInvariant,
    STCH.name: STCH,
    AutoLambda.name: AutoLambda,
    COSMOS.name: COSMOS,
    PBI.name: PBI,
    # loss-weighting entries (end)
    # gradient-manipulation entries (start)
    MGDA.name: MGDA,
    MGDAUB.name: MGDAUB,
    PCGrad.name: PCGrad,
    GradVac.name: GradVac,
    CAGrad.name: CAGrad,
    IMTLG.name: IMTLG,
    NashMTL.name: NashMTL,
    AlignedMTL.name: AlignedMTL,
    UPGrad.name: UPGrad,
    DualProj.name: DualProj,
    GradDrop.name: GradDrop,
    FairGrad.name: FairGrad,
    ConFIG.name: ConFIG,
    PCD.name: PCD,
    ExcessMTL.name: ExcessMTL,
    CRMOGM.name: CRMOGM,
    MoCo.name: MoCo,
    SDMGrad.name: SDMGrad,
    MoDo.name: MoDo,
    EPO.name: EPO,
    ParetoMTL.name: ParetoMTL,
    NTKMTL.name: NTKMTL,
    MomentumConFIG.name: MomentumConFIG,
    # gradient-manipulation entries (end)
}

__all__ = [
    "METHODS",
    "REQUIRES",
    "Combination",
    "StepContext",
    "Weighting",
    "aggregate",
    "available",
    "create",
    "combination_for",
]


def available() -> list[tuple[str, str]]:
    """``(name, description)`` of every registered method, in registry order."""
    return [(name, cls.description) for name, cls in METHODS.items()]


def create(method: str | Weighting, **options) -> Weighting:
    """A fresh method instance from its registry name (or the instance itself, options not allowed)."""
    if isinstance(method, Weighting):
        if options:
            raise ValueError(f"options {sorted(options)} given with a ready {method.name!r} instance")
        return method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    cls = METHODS[method]
    validate.check_option_names(method, cls.options, options)  # the values: checked as the method is built
    return cls(**options)


def combination_for(
    weighting: Weighting,
    G: torch.Tensor,
    losses: torch.Tensor | None,
    ctx: StepContext,
) -> Combination:
    """Call ``weighting.combine`` with what it ``requires`` computed from the gradient matrix ``G``."""
    T = G.shape[0]
    if losses is None:
        if weighting.uses_losses:
            raise ValueError(f"method {weighting.name!r} uses the loss values: pass losses=[L_1, …, L_{T}]")
        losses = torch.ones(T, dtype=G.dtype, device=G.device)
    if weighting.requires == "losses":
        extra = None
    elif weighting.requires == "lookahead":
        raise ValueError(f"method {weighting.name!r} learns from a validation lookahead: train it with the Trainer")
    elif weighting.requires in ("gramian", "cross_gramian"):  # one matrix: one batch stands for both of A's
        extra = G @ G.T
    else:  # "grads", or "rep_grads" where G stands for the representation gradients
        extra = G
    return weighting.combine(losses, extra, ctx)


def aggregate(
    method: str | Weighting,
    G: torch.Tensor,
    losses: torch.Tensor | list[float] | None = None,
    seed: int = 0,
    context: StepContext | None = None,
    **options,
) -> torch.Tensor:
    """Combine the rows of a gradient matrix ``G[T, P]`` into one update direction ``d[P]``.

    ``method`` is a registry name (see :func:`available`) or a ready instance; ``options`` are the
    method's hyper-parameters; ``seed`` seeds methods that draw random numbers. Loss-weighting methods
    return ``Gᵀw``. A fresh instance is reset on every call, so stateful methods act as on a first step;
    pass a ``context`` (:class:`StepContext`: epoch losses, first losses …) to show a later step.
    """
    try:
        G = torch.as_tensor(G)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"G must be a [T, P] matrix of numbers (a tensor or nested lists), got {G!r:.80}") from None
    if G.dim() != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise ValueError(f"G must be a [T, P] matrix with T, P ≥ 1, got shape {tuple(G.shape)}")
    if not G.dtype.is_floating_point:
        G = G.double()
    if not bool(torch.isfinite(G).all()):
        raise ValueError("G contains NaN or infinite entries")
    validate.check_gradient_scale("G", G)
    if losses is not None:
        losses = torch.as_tensor(losses, dtype=G.dtype, device=G.device).reshape(-1)
        if losses.shape[0] != G.shape[0]:
            raise ValueError(f"losses has {losses.shape[0]} entries, G has {G.shape[0]} rows (tasks)")
    weighting = create(method, **options)
    weighting.reset([f"task{i}" for i in range(G.shape[0])])
    ctx = context if context is not None else StepContext(generator=torch.Generator().manual_seed(seed))
    comb = combination_for(weighting, G, losses, ctx)
    if comb.direction is not None:
        return comb.direction
    return comb.weights.to(G.dtype) @ G
