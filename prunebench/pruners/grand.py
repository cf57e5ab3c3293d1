"""GraNd (Paul et al., NeurIPS 2021): keep the samples with the largest expected gradient norm.

A sample's GraNd score is E ||grad_w loss(x, y)||, the norm of its loss gradient averaged over
weights early in training; the static baseline keeps the highest-scoring (1 - p) of the data.
Paul et al. average over 10 independent initializations (public code: mansheej/data_diet,
``grand`` scores of the full parameter gradient). Form used here, and why: the gradient of the
cross-entropy loss with respect to the last layer's output, the logits, computed for a whole batch
at once from its logits: ||softmax(f(x)) - onehot(y)||_2 (the pruner interface carries logits,
not per-sample parameter gradients, so this is the per-sample gradient that is available without
a backward pass per sample; plain cross-entropy, as Paul et al. train, whatever label smoothing
the run uses). At one set of weights that norm equals the EL2N score, so what makes it GraNd is
the expectation: the scores are averaged over every pass during the scoring phase
(``score_epochs`` epochs on all data, static_scoring.py: each sample's training pass of every
scoring epoch, at that step's weights) plus a forward-only pass (eval mode) over every sample at
the phase's end, which EL2N uses alone. The expectation runs over the weights of one run's early
training, not over 10 initializations. The final pass costs n forward passes, charged in
``scoring_forward_passes``; the training passes are charged as training. Defaults: prune_ratio
0.5, score_epochs 10% of the epochs (static_scoring.py).
"""

from __future__ import annotations

import torch

from prunebench.pruners.el2n import el2n_scores
from prunebench.pruners.registry import register_pruner
from prunebench.pruners.static_scoring import StaticScoringPruner


def logit_gradient_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||d cross_entropy / d logits||_2 per sample: ||softmax(logits) - onehot(labels)||_2."""
    # d/dz [-log softmax(z)_y] = softmax(z) - onehot(y): the EL2N error vector, one definition.
    return el2n_scores(logits, labels)


@register_pruner
class GraNd(StaticScoringPruner):
    """Static: keep the largest gradient norms, averaged over the scoring phase."""

    name = "grand"

    def _start_scores(self) -> None:
        self.norm_sum = torch.zeros(self.n, dtype=torch.float32, device=self.device)
        """Sum of the sample's gradient norms over the scoring phase's passes."""
        self.passes = torch.zeros(self.n, dtype=torch.int64, device=self.device)

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {**super()._tensor_state(), "norm_sum": self.norm_sum, "passes": self.passes}

    def scoring_request(self, epoch: int) -> torch.Tensor | None:
        """Every sample, once, when the scoring phase ends."""
        if epoch == self.score_epochs and self.scoring:
            return torch.arange(self.n, device=self.device)
        return None

    def prediction_statistic(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return logit_gradient_norms(logits, labels)

    def observe_predictions(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        if not self.scoring:
            return  # the expectation covers the scoring phase only; frozen once pruned
        self._follow_device(values)
        indices = indices.to(self.device, non_blocking=True)
        # index_add_: a sample listed twice in one call counts twice, as two passes do.
        self.norm_sum.index_add_(0, indices, values.to(self.norm_sum.dtype))
        self.passes.index_add_(0, indices, torch.ones_like(indices))

    def static_scores(self) -> torch.Tensor:
        return self.norm_sum / self.passes.clamp_min(1)
