"""Stop after the save window: the window's checkpoints equal a full run's (the schedule still
spans every epoch), fewer steps are trained, and --resume after the stop trains no further."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from limacot.train import recipe
from limacot.train.config import TrainConfig
from limacot.train.recipe import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS = [{"conversations": [f"Question {i} about pears?", f"Answer {i}: " + "fruit " * (2 + i % 4)]} for i in range(8)]


@pytest.fixture()
def setup(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")

    def config(**overrides) -> TrainConfig:
        # 2 steps per epoch, 4 epochs, window [1, 2]; lr high enough that the schedule shows in the weights;
        # residual dropout on, so the runs also share their random stream
        base = dict(model=str(tmp_path / "tiny"), data=str(tmp_path / "train.jsonl"), epochs=4, save_window=(1, 2),
                    effective_batch_size=4, per_device_batch_size=2, max_length=64, report_to=[],
                    deterministic=True, residual_dropout=0.2, learning_rate=1e-2, min_learning_rate=1e-3)
        return TrainConfig(**{**base, **overrides})
    return tmp_path, config


def weights(path):
    from safetensors.torch import load_file
    return load_file(str(path / "model.safetensors"))


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        assert torch.allclose(tensor, b[name], atol=1e-6, rtol=0), name


def test_window_checkpoints_equal_a_full_run_with_fewer_steps(setup):
    tmp, config = setup
    full = train(config(stop_after_window=False), tmp / "full", progress=False)
    stopped = train(config(), tmp / "stopped", progress=False)
    for epoch in (1, 2):
        assert_same_weights(tmp / "full" / "checkpoints" / f"epoch-{epoch}",
                            tmp / "stopped" / "checkpoints" / f"epoch-{epoch}")
    assert (full.summary["steps"], stopped.summary["steps"]) == (8, 4)
    assert stopped.summary["stopped_after_window"] and not full.summary["stopped_after_window"]
    assert (stopped.summary["epochs_trained"], stopped.summary["epochs_scheduled"]) == (2, 4)
    assert [r["step"] for r in metrics(tmp / "stopped")] == [1, 2, 3, 4]
    rates = [[r["learning_rate"] for r in metrics(tmp / run)] for run in ("stopped", "full")]
    assert rates[0] == rates[1][:4]  # the schedule of the full run
    state = json.loads((tmp / "stopped" / "trainer" / "checkpoint-4" / "trainer_state.json").read_text())
    assert (state["max_steps"], state["num_train_epochs"]) == (8, 4)  # the Trainer still plans the full run
    assert stopped.selection["chosen_epoch"] == full.selection["chosen_epoch"] == 2


def test_resume_after_the_stop_trains_no_further(setup, monkeypatch):
    """Killed after training stopped (here: while answering the dev prompts, with the last export
    missing as if cut short): --resume exports it, trains nothing more, and publishes final/."""
    tmp, config = setup
    train(config(), tmp / "reference", progress=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as patch:
        patch.setattr(recipe.selection, "generate_dev_answers", killed)
        with pytest.raises(KeyboardInterrupt):
            train(config(dev_prompts=["Hi"]), tmp / "run", progress=False)
    shutil.rmtree(tmp / "run" / "checkpoints" / "epoch-2")
    result = train(config(dev_prompts=["Hi"]), tmp / "run", resume=True, progress=False)
    assert [r["step"] for r in metrics(tmp / "run")] == [1, 2, 3, 4]
    assert sorted(p.name for p in (tmp / "run" / "trainer").glob("checkpoint-*")) == ["checkpoint-4"]
    assert_same_weights(tmp / "reference" / "checkpoints" / "epoch-2", tmp / "run" / "checkpoints" / "epoch-2")
    assert_same_weights(tmp / "reference" / "final", tmp / "run" / "final")
    assert result.summary["stopped_after_window"] and result.summary["steps"] == 4
    assert len((tmp / "run" / "dev_generations" / "epoch-2.jsonl").read_text().splitlines()) == 1


def test_kill_in_the_window_then_resume_equals_the_uninterrupted_run(setup, monkeypatch):
    """Killed in epoch 2, just after epoch 1's checkpoint was saved but before its export
    finished: --resume exports epoch 1, trains epoch 2 and stops, as the uninterrupted run."""
    from transformers import TrainerCallback

    tmp, config = setup
    train(config(), tmp / "reference", progress=False)

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt

    class KilledTrainer(recipe.LimaTrainer):
        def __init__(self, *args, callbacks, **kwargs):
            super().__init__(*args, callbacks=callbacks + [Kill()], **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(recipe, "LimaTrainer", KilledTrainer)
        with pytest.raises(KeyboardInterrupt):
            train(config(), tmp / "run", progress=False)
    shutil.rmtree(tmp / "run" / "checkpoints" / "epoch-1")
    result = train(config(), tmp / "run", resume=True, progress=False)
    for epoch in (1, 2):
        assert_same_weights(tmp / "reference" / "checkpoints" / f"epoch-{epoch}",
                            tmp / "run" / "checkpoints" / f"epoch-{epoch}")
    assert result.summary["stopped_after_window"] and result.summary["steps"] == 4
    assert [r["step"] for r in metrics(tmp / "run")] == [1, 2, 3, 4]


def test_selection_refuses_fewer_window_epochs_than_trained(tmp_path):
    """An export missing from the window (lost to a kill, say) is an error, not a smaller choice."""
    from limacot.train import selection

    for epoch in (1, 3):
        (tmp_path / "checkpoints" / f"epoch-{epoch}").mkdir(parents=True)
    with pytest.raises(RuntimeError, match=r"window epoch\(s\) \[2\]"):
        selection.candidates(tmp_path, {}, range(1, 4))
    assert [c["epoch"] for c in selection.candidates(tmp_path, {}, range(3, 4))] == [1, 3]
