"""lmnt-com/diffwave 0.1.7's learner against ours: the same training, step for step.

lmnt's `DiffWaveLearner.train_step` (L1 on ε, t ~ U{0..T−1} per example, x_t = √ᾱ_t x₀ +
√(1−ᾱ_t) ε, Adam, clip_grad_norm_ 1e9) and our `Trainer.train` (diffusion/training/engine.py,
the loop train.py runs) start from the same weights (an lmnt checkpoint through our converter)
and take the same batches and the same t and ε: lmnt's torch.randint / randn_like are fed them,
and our family's `draw` hook (diffusion/families/base.py) returns them for the step. STEPS steps
later the loss trajectories, the weights and the EMA weights agree. lmnt keeps no EMA: the
reference EMA is our rule (diffusion/training/ema.py) applied to lmnt's weights after each step.

The checks have teeth: a wrong β table, an L2 loss and a skipped EMA update, each injected on
our side only, make the comparison report a mismatch.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
import torch
from diffwave import learner as lmnt_learner
from diffwave.model import DiffWave as LmntDiffWave
from diffwave.params import AttrDict
from diffwave.params import params as lmnt_base
from parity_util import report

from diffusion.families.convert import convert_lmnt
from diffusion.families.convert.lmnt import load_lmnt_weights
from diffusion.families.diffwave import DiffWaveFamily
from diffusion.training.engine import Trainer

# lmnt's learner builds its (disabled) CUDA autocast and GradScaler with the deprecated API.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.cuda.amp:FutureWarning")

STEPS, BATCH, FRAMES, HOP = 6, 2, 4, 256
LENGTH = FRAMES * HOP                        # 1024 samples: whole mel frames
LAYERS, CHANNELS = 3, 8
KERAS_EPS = 1e-7                             # keras.optimizers.Adam's ε̂ (the Trainer's)
LOSS_RTOL = 1e-5                             # float32 reordering (measured ~1e-7)
WEIGHT_RTOL = 1e-3                           # of the largest weight change w_N − w_0 (~10 ulp)
MEL_ONLY = ("spectrogram_upsampler.", "conditioner_projection")  # absent when unconditional


def lmnt_model(conditioned, seed=0):
    """lmnt's network, tiny. lmnt zero-initialises the output projection (no gradient reaches the
    rest at step 1): it gets weights here so every tensor trains from the first step."""
    torch.manual_seed(seed)
    params = AttrDict(lmnt_base).override(dict(residual_layers=LAYERS, residual_channels=CHANNELS,
                                               batch_size=BATCH))
    model = LmntDiffWave(params)
    with torch.no_grad():
        model.output_projection.weight.normal_(0.0, 0.3)
        for layer in model.residual_layers:
            layer.dilated_conv.bias.normal_(0.0, 0.1)
    if not conditioned:      # v0.1.8's unconditional net = 0.1.7's, conditioner zero and frozen
        for name, p in model.named_parameters():
            if any(k in name for k in MEL_ONLY):
                if "conditioner_projection" in name:
                    p.data.zero_()
                p.requires_grad_(False)
    return model, params


def lmnt_state(model, conditioned):
    """The state dict as lmnt v0.1.7 (mel) or v0.1.8 (unconditional) saves it."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if conditioned or not any(u in k for u in MEL_ONLY)}


def lmnt_train(model, params, audio, mels, ts, noises, tmp):
    """lmnt's DiffWaveLearner.train_step on each batch → (losses, state after each step)."""
    conditioned = mels is not None
    # torch's Adam defaults except ε: Keras adds ε̂ to √v_t, torch adds ε to √v_t / √(1−β₂ᵗ), so
    # ε = ε̂ / √(1−β₂ᵗ) each step is the same update (our Trainer's Adam has no ε setting).
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=params.learning_rate)
    learner = lmnt_learner.DiffWaveLearner(str(tmp), model, None, optimizer, params)
    losses, states = [], []
    saved = lmnt_learner.torch.randint, lmnt_learner.torch.randn_like
    try:
        for n in range(STEPS):
            optimizer.param_groups[0]["eps"] = KERAS_EPS / math.sqrt(1.0 - 0.999 ** (n + 1))
            draws = [torch.from_numpy(ts[n]).long(), torch.from_numpy(noises[n][..., 0])]
            lmnt_learner.torch.randint = lambda *a, **k: draws.pop(0)       # t, then ε
            lmnt_learner.torch.randn_like = lambda *a, **k: draws.pop(0)
            mel = torch.from_numpy(mels[n].transpose(0, 2, 1).copy()) if conditioned else \
                torch.zeros(BATCH, params.n_mels, FRAMES)
            loss = learner.train_step({"audio": torch.from_numpy(audio[n][..., 0]),
                                       "spectrogram": mel})
            assert not draws
            losses.append(float(loss.detach()))
            states.append(lmnt_state(model, conditioned))
    finally:
        lmnt_learner.torch.randint, lmnt_learner.torch.randn_like = saved
    return np.array(losses), states


class FedDiffWave(DiffWaveFamily):
    """Our DiffWave family with two test seams: build_model hands the Trainer the converted
    model, and draw (the engine's hook for a step's t and ε) returns lmnt's for the step."""

    def __init__(self, params, model, ts, noises):
        super().__init__(params)
        self.converted, self.ts, self.noises = model, tf.constant(ts), tf.constant(noises)

    def build_model(self):
        return self.converted

    def draw(self, objective, shape, seed):
        step = seed[0]               # the engine keys a step's draws by (step, train.seed)
        return {"t": self.ts[step], "noise": self.noises[step],
                **self.training_draws(shape[0], seed)}


def our_train(case, run, overrides=(), inject=None):
    """Our Trainer.train for STEPS steps → (losses, weights, EMA weights)."""
    params, model = convert_lmnt(str(case["ckpt"]), [f"data.batch_size={BATCH}", *overrides])
    family = FedDiffWave(params, model, case["ts"], case["noises"])
    audio = case["audio"].reshape(STEPS * BATCH, LENGTH, 1)
    dataset = tf.data.Dataset.from_tensor_slices({"audio": audio}).batch(BATCH)
    trainer = Trainer(family, params, tf.distribute.get_strategy(), run, dataset)
    # lmnt's optimiser and clipping (params.py, learner.py): Adam(lr), default β; 1e9
    tp, opt, lmnt = params.train, trainer.optimizer, case["params"]
    assert (tp.learning_rate, tp.warmup_steps, tp.grad_clip_norm) == \
        (lmnt.learning_rate, 0, lmnt.max_grad_norm or 1e9)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.9, 0.999, KERAS_EPS)
    assert trainer.model.impl == params.network.impl
    if inject == "skip-ema":
        trainer.ema.update = lambda model, step: None
    losses, run_step = [], trainer.run_step

    def recorded():                  # train() calls self.run_step: keep each step's loss
        result = run_step()
        losses.append(result[0])
        return result

    trainer.run_step = recorded
    assert trainer.train(until_step=STEPS, log=lambda line: None) == "done"
    return (np.array(losses), [v.numpy() for v in trainer.model.trainable_variables],
            [v.numpy() for v in trainer.ema.shadow])


def compare(ours, case):
    """{check: (max error, bound)}: losses (relative), final weights and EMA (absolute, the bound
    relative to the largest weight change over the run)."""
    losses, weights, ema = ours
    theirs = case["theirs"]
    loss = float(np.max(np.abs(losses - theirs["losses"]) / np.abs(theirs["losses"])))
    bound = WEIGHT_RTOL * theirs["scale"]
    worst = lambda a, b: max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))  # noqa: E731
    return {"losses": (loss, LOSS_RTOL), "weights": (worst(weights, theirs["weights"]), bound),
            "EMA": (worst(ema, theirs["ema"]), bound)}


def mismatches(errors):
    return sorted(k for k, (error, bound) in errors.items() if not error <= bound)


@pytest.fixture(scope="module", params=["none", "mel"])
def case(request, tmp_path_factory):
    """lmnt's run: its checkpoint (step 0), batches, t and ε, and its trajectory in our layout."""
    conditioned = request.param == "mel"
    tmp = tmp_path_factory.mktemp(f"lmnt-{request.param}")
    model, params = lmnt_model(conditioned)
    raw = dict(params, noise_schedule=list(map(float, params.noise_schedule)))
    if not conditioned:
        raw["unconditional"] = True
    torch.save({"step": 0, "model": lmnt_state(model, conditioned), "params": raw},
               tmp / "weights.pt")
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.5, 0.5, (STEPS, BATCH, LENGTH, 1)).astype(np.float32)
    ts = rng.integers(0, len(params.noise_schedule), (STEPS, BATCH)).astype(np.int32)
    noises = rng.standard_normal((STEPS, BATCH, LENGTH, 1)).astype(np.float32)
    ours_params, mirror = convert_lmnt(str(tmp / "weights.pt"))       # also maps lmnt → ours
    family = DiffWaveFamily(ours_params)
    mels = np.stack([family.split_batch({"audio": tf.constant(a)})[1]["mel"].numpy()
                     for a in audio]) if conditioned else None

    def ours_layout(state):
        load_lmnt_weights(mirror, {k: v.numpy() for k, v in state.items()}, "lmnt")
        return [v.numpy() for v in mirror.trainable_variables]

    initial = ours_layout(lmnt_state(model, conditioned))
    losses, states = lmnt_train(model, params, audio, mels, ts, noises, tmp / "learner")
    # The reference EMA: ema.py's rule on lmnt's weights, decay min(d, (1 + n)/(10 + n)).
    decay, ema = ours_params.train.ema_decay, initial
    assert ours_params.train.ema_power == 0
    for n, state in enumerate(states, 1):
        d = np.float32(min(decay, (1.0 + n) / (10.0 + n)))
        ema = [d * e + (np.float32(1) - d) * w for e, w in zip(ema, ours_layout(state))]
    weights = ours_layout(states[-1])
    scale = max(float(np.max(np.abs(w - w0))) for w, w0 in zip(weights, initial))
    return {"name": request.param, "ckpt": tmp / "weights.pt", "params": params, "audio": audio,
            "ts": ts, "noises": noises,
            "theirs": {"losses": losses, "weights": weights, "ema": ema, "scale": scale}}


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_training_matches_lmnt_learner(case, impl, tmp_path):
    errors = compare(our_train(case, tmp_path, [f"network.impl={impl}"]), case)
    what = f"lmnt DiffWaveLearner vs our Trainer, {STEPS} steps ({case['name']}, {impl})"
    print(f"\n{what}: lmnt losses {np.round(case['theirs']['losses'], 5).tolist()}, "
          f"largest weight change {case['theirs']['scale']:.3g}")
    for check, (error, bound) in errors.items():
        report(f"{what}, {check}", error, bound, "relative" if check == "losses" else "abs")


# bug: (our overrides, injection, the checks it must break: exactly these)
INJECTED = {"wrong β table (beta_end 0.05 → 0.0505)": (["diffusion.beta_end=0.0505"], None,
                                                       ["EMA", "losses", "weights"]),
            "L2 loss instead of L1": (["diffusion.loss=l2"], None, ["EMA", "losses", "weights"]),
            "EMA update skipped": ([], "skip-ema", ["EMA"])}


@pytest.mark.parametrize("case", ["none"], indirect=True)   # one conditioning is enough
@pytest.mark.parametrize("bug", list(INJECTED))
def test_injected_bug_is_caught(case, bug, tmp_path):
    overrides, inject, expected = INJECTED[bug]
    errors = compare(our_train(case, tmp_path, ["network.impl=reference", *overrides], inject),
                     case)
    print(f"\nPARITY injected {bug}: " + ", ".join(
        f"{k} {e:.3g} ({e / b:.3g}× bound)" for k, (e, b) in errors.items()))
    assert mismatches(errors) == expected, f"{bug}: {errors}"
