"""How a run was trained, read back from its TensorBoard events (RUN/logs): the training time
across sessions and the steps per second, for a pretrained model's card.

Every train.py invocation writes its own events file and logs train/steps_per_second every
train.log_every steps. One session's training time is the wall-clock span between its first and
last logged step plus the first interval (log_every / its rate); sessions add up. Steps logged
twice (a resume from an earlier checkpoint repeats them) count in each session that ran them:
the figure is the compute spent, not the steps kept.
"""
from __future__ import annotations

import glob
import os


def sessions(run_dir):
    """[(first step, last step, seconds, mean steps/s)] per events file, oldest first."""
    import tensorflow as tf

    out = []
    pattern = os.path.join(glob.escape(str(run_dir)), "logs", "events.out.tfevents.*")
    for path in sorted(glob.glob(pattern), key=os.path.getmtime):
        points = []                                       # (step, wall time, rate)
        try:
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.tag == "train/steps_per_second":
                        rate = float(tf.make_ndarray(value.tensor)) if value.HasField(
                            "tensor") else float(value.simple_value)
                        points.append((int(event.step), float(event.wall_time), rate))
        except tf.errors.DataLossError:                   # a file cut short by a kill: keep
            pass                                          # what was read
        if not points:
            continue
        points.sort(key=lambda p: p[1])
        (s0, w0, r0), (s1, w1, _) = points[0], points[-1]
        first = points[1][0] - s0 if len(points) > 1 else 0   # log_every: steps before the
        head = first / r0 if r0 > 0 else 0.0                # first log, at its rate
        seconds = w1 - w0 + head
        steps = s1 - s0 + first
        out.append((s0 - first, s1, seconds, steps / seconds if seconds > 0 else 0.0))
    return out


def summary(run_dir) -> dict:
    """{'sessions', 'seconds', 'steps_run'} over all of the run's sessions."""
    found = sessions(run_dir)
    return {"sessions": len(found), "seconds": sum(s[2] for s in found),
            "steps_run": sum(s[1] - s[0] for s in found)}
