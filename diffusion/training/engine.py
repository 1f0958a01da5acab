"""The one training loop of every model: one tf.function step through strategy.run, EMA,
checkpoints that resume exactly, TensorBoard, and clean stops.

    trainer = Trainer(family, params, strategy, run_dir, dataset)
    status = trainer.train(until_step=1000)        # "done" | "stopped" (signal) | raises TrainError

The family (diffusion/families/base.py) supplies the model, the step's random draws and the
per-example loss: DiffWave, mel-UNet, DiffAE and DiffGen (a diffusion objective), and the
mel VAE (reconstruction + KL, no EMA: diffusion/families/mel/vae.py).

Exact resume: the checkpoint holds the model, the EMA weights, the optimizer (with its step),
the loss scale and the tf.data iterator; every random draw of a step is stateless, keyed by
(step, replica). A run stopped anywhere and resumed reaches the weights of an uninterrupted one.
A non-finite loss or gradient stops training before the update, so the last checkpoint is good.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from data.figures import clip_figure_png
from diffusion.core.objectives import make_objective
from diffusion.core.schedule import NoiseSchedule
from diffusion.training.checkpoints import is_packaged, latest_checkpoint, load_packaged, restore
from diffusion.training.ema import EMA
from diffusion.training.precision import apply_policy
from diffusion.training.strategy import is_chief


class TrainError(RuntimeError):
    """Training cannot go on; the message says why (one line)."""


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr · min(1, (step + 1) / warmup): linear warm-up, then constant."""

    def __init__(self, lr, warmup):
        self.lr, self.warmup = float(lr), int(warmup)

    def __call__(self, step):
        if self.warmup <= 0:
            return tf.constant(self.lr)
        return self.lr * tf.minimum(1.0, (tf.cast(step, tf.float32) + 1.0) / self.warmup)

    def get_config(self):
        return {"lr": self.lr, "warmup": self.warmup}


class Trainer:
    def __init__(self, family, params, strategy, run_dir, dataset):
        self.family, self.params, self.strategy = family, params, strategy
        self.run_dir = str(run_dir)
        self.chief = is_chief(strategy)
        tp = params.train
        self.global_batch = params.data.batch_size
        self.schedule = NoiseSchedule.from_params(params)
        # ε (DiffWave, mel) or v (text-to-audio families): the family chooses.
        self.objective = make_objective(family.objective, self.schedule,
                                        params.diffusion.loss) if family.objective else None
        fp16 = apply_policy(tp, "training") == "mixed_float16"
        keras.utils.set_random_seed(tp.seed)      # the initial weights are part of the run
        with strategy.scope():
            self.model = family.build_model()
            self.optimizer = keras.optimizers.Adam(WarmupSchedule(tp.learning_rate,
                                                                  tp.warmup_steps))
            self.optimizer.build(self.model.trainable_variables)
            self.ema = EMA(self.model, tp.ema_decay, tp.ema_power) if family.uses_ema else None
            # Dynamic loss scale for fp16 (halved on overflow, doubled after 2000 good steps).
            self.loss_scale = tf.Variable(2.0 ** 15 if fp16 else 1.0, trainable=False)
            self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        # Every worker runs the same seeded pipeline and each replica takes its slice of the
        # global batch: a plain tf.data iterator, which (unlike a distributed one) checkpoints.
        replicas = strategy.num_replicas_in_sync
        if self.global_batch % replicas:
            raise TrainError(f"data.batch_size={self.global_batch} must be a multiple of the "
                             f"{replicas} replicas")
        self.per_replica = self.global_batch // replicas
        self.iterator = iter(dataset)
        # The layout of every run's checkpoints (a VAE's: model, optimizer, data).
        extra = dict(ema=self.ema, loss_scale=self.loss_scale, good_steps=self.good_steps) \
            if family.uses_ema else {}
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              data=self.iterator, **extra)
        # Non-chief workers write to a scratch directory, as tf.distribute prescribes.
        ckpt_dir = os.path.join(self.run_dir, "checkpoints")
        if not self.chief:
            ckpt_dir = os.path.join(self.run_dir, "tmp-workers", f"worker-{self._task_id()}")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, ckpt_dir, max_to_keep=tp.keep_checkpoints if self.chief else 1)
        self.writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "logs")) \
            if self.chief else tf.summary.create_noop_writer()
        self._stop_signal = None
        self._step_fn = None
        self.metrics = {}

    def _task_id(self):
        return getattr(getattr(self.strategy, "cluster_resolver", None), "task_id", 0)

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    # --- checkpoints -------------------------------------------------------------------
    def init_from(self, other_run) -> str:
        """Fine-tuning: the model and EMA weights of another run's latest checkpoint (its
        optimizer and step are not taken). The caller checks that the network params agree."""
        latest = latest_checkpoint(other_run)
        if not latest:
            raise TrainError(f"--init-from {other_run}: no checkpoint there")
        if is_packaged(latest):             # pretrained/: one set of weights, the EMA's too
            load_packaged(self.model, latest, error=TrainError, what="cannot load into this "
                          "model")
            for shadow, var in zip(self.ema.shadow if self.ema else [],
                                   self.model.trainable_variables):
                shadow.assign(var)
            return latest
        return restore(tf.train.Checkpoint(model=self.model, ema=self.ema), latest, partial=True,
                       error=TrainError, what="cannot restore into this model",
                       prefix="--init-from ")

    def restore(self) -> int:
        """Restores the latest checkpoint if there is one; returns the step reached."""
        # Every worker restores the chief's checkpoint (the others only write scratch copies).
        latest = latest_checkpoint(self.run_dir)
        if not latest:
            return 0
        if is_packaged(latest):
            raise TrainError(f"{self.run_dir}: a packaged run (sampling weights only) cannot be "
                             f"resumed; train a new run with --init-from {self.run_dir}")
        restore(self.checkpoint, latest, partial=False, error=TrainError, width=160,
                what="cannot restore this checkpoint into the run's model (corrupt, or made "
                     "with other params)")
        return self.step

    def save(self) -> str:
        try:
            return self.manager.save(checkpoint_number=self.step)
        except (tf.errors.OpError, OSError) as e:
            reason = str(e).strip().splitlines()[0][:160]
            raise TrainError(f"cannot write a checkpoint in {self.manager.directory} ({reason}); "
                             f"the previous checkpoint is intact") from None

    # --- one step ------------------------------------------------------------------------
    def _replica_step(self, batches):
        """Gradient of the mean loss over len(batches) micro-batches (gradient accumulation):
        the same sum as one batch of len(batches)·B, micro-batch i being its rows i·B…"""
        start = tf.distribute.get_replica_context().replica_id_in_sync_group * self.per_replica
        mine = lambda v: v[start:start + self.per_replica]  # noqa: E731
        total = self.global_batch * len(batches)
        seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int32), self.params.train.seed])
        variables = self.model.trainable_variables
        loss, grads, metrics = 0.0, None, {}
        for i, batch in enumerate(batches):
            x0, cond = self.family.split_batch({k: mine(v) for k, v in batch.items()})
            if i == 0:   # t, ε (+ family draws, e.g. CFG's null text) for all micro-batches
                shape = tf.concat([[total], tf.shape(x0)[1:]], axis=0)
                all_draws = self.family.draw(self.objective, shape, seed)
            rows = slice(i * self.global_batch + start, i * self.global_batch + start +
                         self.per_replica)                         # this replica's slice
            draws = {k: v[rows] for k, v in all_draws.items()}
            with tf.GradientTape() as tape:
                per_example, part_metrics = self.family.loss(self.objective, self.model, x0,
                                                             cond, draws, seed)
                part = tf.nn.compute_average_loss(per_example, global_batch_size=total)
                scaled = part * self.loss_scale
            part_grads = tape.gradient(scaled, variables)
            loss = loss + part
            grads = part_grads if grads is None else [a + b for a, b in zip(grads, part_grads)]
            for k, v in part_metrics.items():                      # means of the micro-batches
                metrics[k] = metrics.get(k, 0.0) + v / len(batches)
        return loss, grads, metrics

    def _train_step(self, batch):
        loss, grads, metrics = self.strategy.run(self._replica_step, args=(batch,))
        sum_ = tf.distribute.ReduceOp.SUM
        loss = self.strategy.reduce(sum_, loss, axis=None)
        metrics = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                   for k, v in metrics.items()}
        grads = [self.strategy.reduce(sum_, g, axis=None) / self.loss_scale for g in grads]
        norm = tf.linalg.global_norm(grads)
        grads, _ = tf.clip_by_global_norm(grads, self.params.train.grad_clip_norm, use_norm=norm)
        finite = tf.math.is_finite(norm)
        if finite:
            self.optimizer.apply(grads, self.model.trainable_variables)
            if self.ema is not None:
                self.ema.update(self.model, self.optimizer.iterations)
            self.good_steps.assign_add(1)
            if self.loss_scale > 1.0 and self.good_steps % 2000 == 0:
                self.loss_scale.assign(self.loss_scale * 2.0)
        elif self.loss_scale > 1.0:                       # fp16 overflow: skip, shrink the scale
            self.loss_scale.assign(tf.maximum(self.loss_scale / 2.0, 1.0))
            self.good_steps.assign(0)
        return loss, norm, finite, metrics

    def run_step(self):
        if self._step_fn is None:
            accum = self.params.train.grad_accum_steps
            self._step_fn = tf.function(
                lambda: self._train_step([next(self.iterator) for _ in range(accum)]))
        loss, norm, finite, metrics = self._step_fn()
        self.metrics = {k: float(v) for k, v in metrics.items()}
        return float(loss), float(norm), bool(finite)

    # --- the loop --------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        self._stop_signal = signal.Signals(signum).name

    def train(self, until_step: int, sample_fn=None, log=print) -> str:
        tp = self.params.train
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        audio_per_step = self.global_batch * tp.grad_accum_steps * \
            self.params.data.crop_samples / self.params.data.sample_rate
        tty = sys.stdout.isatty()
        start_step, t0 = self.step, time.perf_counter()
        try:
            while self.step < until_step:
                try:
                    loss, norm, finite = self.run_step()
                except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                        tf.errors.CancelledError, tf.errors.InternalError) as e:
                    if self.strategy.num_replicas_in_sync == 1 or not hasattr(
                            self.strategy, "cluster_resolver"):
                        raise
                    raise TrainError(f"lost a worker at step {self.step} "
                                     f"({str(e).strip().splitlines()[0][:100]}); run the same "
                                     f"command again to resume from "
                                     f"{self.manager.latest_checkpoint or 'the start'}") from None
                if not math.isfinite(loss) or (not finite and self.loss_scale <= 1.0):
                    what = (f"loss became {loss} (grad norm {norm})" if not math.isfinite(loss)
                            else f"gradients became {norm} (loss {loss:.4g})")
                    raise TrainError(f"{what} at step {self.step};"
                                     f" stopped before the update; last good checkpoint: "
                                     f"{self.manager.latest_checkpoint or 'none'}")
                step = self.step
                rate = (step - start_step) / max(time.perf_counter() - t0, 1e-9)
                extra = "".join(f"  {k} {v:.4f}" for k, v in self.metrics.items())
                line = (f"step {step}/{until_step}  loss {loss:.4f}{extra}  grad_norm {norm:.3f}"
                        f"  {rate:.2f} steps/s  {rate * audio_per_step:.1f} audio-s/s")
                if step % tp.log_every == 0 or step == until_step:
                    self._log_scalars(step, loss, norm, rate)
                    if not tty:
                        log(line)
                if tty:
                    print("\r" + line, end="", flush=True)
                if sample_fn is not None and step % tp.audio_every == 0:
                    self._log_audio(step, sample_fn)
                if step % tp.checkpoint_every == 0:
                    self.save()
                if self._stop_signal:
                    break
            if tty:
                print()
            path = self.save()
            if self._stop_signal:
                log(f"{self._stop_signal}: stopped at step {self.step}; checkpoint {path}")
                return "stopped"
            return "done"
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            self.writer.flush()

    def _log_scalars(self, step, loss, norm, rate):
        lr = float(self.optimizer.learning_rate)
        with self.writer.as_default(step=step):
            tf.summary.scalar("train/loss", loss)
            tf.summary.scalar("train/grad_norm", norm)
            tf.summary.scalar("train/learning_rate", lr)
            tf.summary.scalar("train/steps_per_second", rate)
            for k, v in self.metrics.items():
                tf.summary.scalar(f"train/{k}", v)

    def _log_audio(self, step, sample_fn):
        with self.ema.swapped(self.model):
            audio = np.asarray(sample_fn(self.model))          # [N, T, 1] in [-1, 1]
        if not self.chief:
            return
        rate = self.params.data.sample_rate
        figures = tf.stack([tf.io.decode_png(clip_figure_png(clip[:, 0], rate,
                                                             f"step {step}, sample {i}"))
                            for i, clip in enumerate(audio[:2])])   # generate.py's figure
        with self.writer.as_default(step=step):
            tf.summary.audio("samples/audio", audio, rate, max_outputs=2)
            tf.summary.image("samples/figure", figures, max_outputs=2)
