"""The training loop shared by Task2Box and the trained baselines (Linear, MLP).

Adam, seeded; one call of ``step(epoch)`` per epoch (full batch or a loop over mini-batches inside);
validation every ``eval_every`` epochs with early stopping on the validation score (higher is better)
and restoration of the best parameters; checkpoint save / resume; a tqdm progress bar (only on a terminal
unless asked for); a loss history.

Determinism: every random draw inside ``step`` must come from ``generator`` (a ``torch.Generator``
stored in the checkpoint), so that a run resumed from a checkpoint ends with the same parameters as an
uninterrupted one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from .checkpoint import load_checkpoint, save_checkpoint, snapshot

__all__ = ["TrainState", "run_training", "torch_threads", "show_progress"]


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
    stopped: bool = False


def show_progress(progress: bool | None) -> bool:
    """Whether to draw a progress bar: ``progress`` when given, else only when stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _progress_bar(progress, total: int, initial: int, desc: str):
    """A tqdm bar on stderr, or None. Off a terminal (``progress=True`` into a log) it is redrawn at most every
    10 s, so a log gets a few lines, never one carriage-return update per epoch."""
    if not show_progress(progress):
        return None
    from tqdm.auto import tqdm

    tty = show_progress(None)
    return tqdm(total=total, initial=initial, desc=desc, leave=False, mininterval=0.1 if tty else 10.0,
                maxinterval=10.0 if tty else 60.0)


def _resume_state(resume: str, module, optimizer, generator, payload):
    """(history, TrainState) of a checkpoint written by :func:`run_training`, loaded into the module, the
    optimizer and the RNGs; a clear ValueError when the checkpoint cannot continue this run."""
    import torch

    ck = load_checkpoint(resume)
    tr = ck.get("train")
    if tr is None:
        raise ValueError(f"{resume}: this checkpoint holds the kept parameters only, not the training state "
                         "(written by save(), or at the end of training by an earlier tasklens); load it with "
                         "Task2Box.load() to use the model, or train again with fit(checkpoint=...)")
    static = payload() if payload else {}
    for key in ("kind", "in_dim"):
        if key in static and ck.get(key) != static[key]:
            raise ValueError(f"{resume}: the checkpoint was written for {key}={ck.get(key)!r}, this run has "
                             f"{key}={static[key]!r}; resume with the data and model it was trained on")
    try:
        module.load_state_dict(tr.get("last_model", ck["model"]))
        optimizer.load_state_dict(tr["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ValueError(f"{resume}: the checkpoint does not match this model's architecture or optimizer "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]}); resume with the settings it was "
                         "trained with") from None
    generator.set_state(tr["generator"])
    torch.set_rng_state(tr["torch_rng"])
    st = TrainState(tr["epoch"], tr["best_score"], tr["best_epoch"], tr["bad_evals"], tr["best_state"],
                    tr.get("stopped", False))
    history = ck["history"]
    for key in ("best_epoch", "best_val", "epochs_run"):  # summary entries, rewritten at the end
        history.pop(key, None)
    return history, st


def run_training(module, optimizer, step: Callable[[int], dict], *, epochs: int, generator,
                 validate: Callable[[], float] | None = None, eval_every: int = 10, patience: int = 10,
                 progress: bool | None = None, checkpoint: str | None = None, checkpoint_every: int = 50,
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
    progress : tqdm bar on stderr: None = only when stderr is a terminal, True = always, False = never.
    checkpoint : path written every ``checkpoint_every`` epochs and at the end.
    resume : path of any checkpoint this function wrote (periodic or final) to continue from: module,
        optimizer, RNG, early stopping and history are restored. A final checkpoint of a finished run
        (all epochs, or stopped early) gives the same result again; with more ``epochs`` than it ran, a run
        that was not stopped early continues from its last parameters.
    payload : returns the static part of the checkpoint (kind, config, in_dim).
    callback : called as ``callback(epoch, history)`` after each epoch (may raise to interrupt).

    Every checkpoint holds the kept parameters under ``"model"`` (at the end: the best validated ones) and
    the training state under ``"train"``, with the parameters of the last epoch as ``"last_model"``.
    """
    import torch

    history: dict = {"loss": [], "val": []}
    st = TrainState()
    if resume is not None:
        history, st = _resume_state(resume, module, optimizer, generator, payload)

    def write(kept: dict | None = None, last: dict | None = None):
        if checkpoint is None:
            return
        data = dict(payload() if payload else {})
        last = last if last is not None else snapshot(module)
        data.update(model=kept if kept is not None else last, history=history)
        data["train"] = {"optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                         "torch_rng": torch.get_rng_state(), "epoch": st.epoch,
                         "best_score": st.best_score, "best_epoch": st.best_epoch,
                         "bad_evals": st.bad_evals, "best_state": st.best_state, "stopped": st.stopped,
                         "last_model": last}
        save_checkpoint(checkpoint, data)

    bar = _progress_bar(progress, epochs, min(st.epoch, epochs), desc)
    try:
        while st.epoch < epochs and not st.stopped:
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
                    st.stopped = st.bad_evals >= patience
            if bar is not None:
                bar.set_postfix(loss=f"{history['loss'][-1]:.4f}",
                                val=f"{history['val'][-1][1]:.3f}" if history["val"] else "-", refresh=False)
                bar.update(1)
            if checkpoint is not None and st.epoch % checkpoint_every == 0 and not st.stopped and st.epoch < epochs:
                write()
            if callback is not None:
                callback(st.epoch, history)
    finally:
        if bar is not None:
            bar.close()
    module.eval()
    last = snapshot(module)
    kept = st.best_state if st.best_state is not None else last
    module.load_state_dict(kept)
    history["best_epoch"] = st.best_epoch
    history["best_val"] = st.best_score
    history["epochs_run"] = st.epoch
    write(kept, last)
    return history
