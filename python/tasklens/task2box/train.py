"""The training loop shared by Task2Box and the trained baselines (Linear, MLP).

Adam, seeded; one call of ``step(epoch)`` per epoch (full batch or a loop over mini-batches inside);
validation every ``eval_every`` epochs with early stopping on the validation score (higher is better)
and restoration of the best parameters; checkpoint save / resume; a tqdm progress bar; a loss history.

Determinism: every random draw inside ``step`` must come from ``generator`` (a ``torch.Generator``
stored in the checkpoint), so that a run resumed from a checkpoint ends with the same parameters as an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .checkpoint import load_checkpoint, save_checkpoint, snapshot

__all__ = ["TrainState", "run_training", "torch_threads"]


class torch_threads:
    """Context manager setting torch's intra-op thread count (``None`` leaves it unchanged).

    The Task2Box networks are small (hundreds of rows); on a busy machine torch's thread pool costs
    more than it saves, so the estimators default to one torch thread while the native box kernels
    keep their own pool (:func:`tasklens.set_num_threads`).
    """

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import torch

        self.prev = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.prev)
        return False


@dataclass
class TrainState:
    epoch: int = 0
    best_score: float = float("-inf")
    best_epoch: int = -1
    bad_evals: int = 0
    best_state: dict | None = None


def run_training(module, optimizer, step: Callable[[int], dict], *, epochs: int, generator,
                 validate: Callable[[], float] | None = None, eval_every: int = 10, patience: int = 10,
                 progress: bool = True, checkpoint: str | None = None, checkpoint_every: int = 50,
                 resume: str | None = None, payload: Callable[[], dict] | None = None,
                 callback: Callable[[int, dict], None] | None = None, desc: str = "train") -> dict:
    """Run the loop; returns the history ``{"loss": [...], "val": [(epoch, score), ...], ...}``.

    Parameters
    ----------
    module : torch.nn.Module being trained; optimizer : its optimizer.
    step : ``step(epoch) -> dict`` of loss components (``"loss"`` required) for one epoch.
    epochs : maximum number of epochs. generator : torch.Generator for every random draw in ``step``.
    validate : returns the validation score (higher is better) or None for no early stopping.
    eval_every : epochs between validations. patience : validations without improvement before stopping.
    progress : show a tqdm bar. checkpoint : path written every ``checkpoint_every`` epochs and at the end.
    resume : path of a checkpoint to continue from (module, optimizer, RNG, early stopping, history).
    payload : returns the static part of the checkpoint (kind, config, in_dim).
    callback : called as ``callback(epoch, history)`` after each epoch (may raise to interrupt).
    """
    import torch
    from tqdm.auto import tqdm

    history: dict = {"loss": [], "val": []}
    st = TrainState()
    if resume is not None:
        ck = load_checkpoint(resume)
        tr = ck.get("train")
        if tr is None:
            raise ValueError(f"{resume}: checkpoint has no training state to resume from")
        module.load_state_dict(ck["model"])
        optimizer.load_state_dict(tr["optimizer"])
        generator.set_state(tr["generator"])
        torch.set_rng_state(tr["torch_rng"])
        history = ck["history"]
        st = TrainState(tr["epoch"], tr["best_score"], tr["best_epoch"], tr["bad_evals"], tr["best_state"])

    def write(final: bool):
        if checkpoint is None:
            return
        data = dict(payload() if payload else {})
        data.update(model=snapshot(module), history=history)
        if not final:
            data["train"] = {"optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                             "torch_rng": torch.get_rng_state(), "epoch": st.epoch,
                             "best_score": st.best_score, "best_epoch": st.best_epoch,
                             "bad_evals": st.bad_evals, "best_state": st.best_state}
        save_checkpoint(checkpoint, data)

    bar = tqdm(total=epochs, initial=st.epoch, desc=desc, disable=not progress, leave=False)
    stopped = False
    try:
        while st.epoch < epochs and not stopped:
            module.train()
            comps = step(st.epoch)
            for k, v in comps.items():
                history.setdefault(k, []).append(float(v))
            st.epoch += 1
            if validate is not None and (st.epoch % eval_every == 0 or st.epoch == epochs):
                module.eval()
                with torch.no_grad():
                    score = float(validate())
                history["val"].append((st.epoch, score))
                if score > st.best_score:
                    st.best_score, st.best_epoch, st.bad_evals = score, st.epoch, 0
                    st.best_state = snapshot(module)
                else:
                    st.bad_evals += 1
                    stopped = st.bad_evals >= patience
            bar.update(1)
            if progress:
                bar.set_postfix(loss=f"{history['loss'][-1]:.4f}",
                                val=f"{history['val'][-1][1]:.3f}" if history["val"] else "-")
            if checkpoint is not None and (st.epoch % checkpoint_every == 0) and not stopped and st.epoch < epochs:
                write(final=False)
            if callback is not None:
                callback(st.epoch, history)
    finally:
        bar.close()
    if st.best_state is not None:
        module.load_state_dict(st.best_state)
    module.eval()
    history["best_epoch"] = st.best_epoch
    history["best_val"] = st.best_score
    history["epochs_run"] = st.epoch
    write(final=True)
    return history
