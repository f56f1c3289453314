"""A tiny run for tests/test_train_resume.py: trains, then saves the final parameters.

python tests/_resume_script.py --workdir DIR [--resume] [--sleep 0.2] [--slow-save-step 15]

``--sleep`` pauses after each logged step (through ``fit``'s callback) so the test can
kill the process mid-epoch. ``--slow-save-step S`` slows the writer of checkpoint ``S``:
its arrays are written to orbax's temporary folder, then the process sleeps for a minute
before the commit (the rename), so the test can kill it inside the write.
"""

import dataclasses
import time

import jax
import numpy as np
import optax

import jaxcnn as jc
from jaxcnn.train import fit, parse_config


@dataclasses.dataclass
class Config:
    workdir: str = "runs/resume"
    seed: int = 0
    epochs: int = 3
    batch_size: int = 8
    lr: float = 0.05
    resume: bool = False
    ensemble: int = 1
    checkpoint_every: int = 5
    sleep: float = 0.0
    slow_save_step: int = -1


def slow_down_commit(step):
    """Makes orbax sleep before committing checkpoint ``step`` (tests only)."""
    import asyncio

    from orbax.checkpoint._src.path import atomicity

    commit = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self, *args, **kwargs):
        if self.get_final().name == str(step):
            await asyncio.sleep(60)
        return await commit(self, *args, **kwargs)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize


def main():
    cfg = parse_config(Config)
    if cfg.slow_save_step >= 0:
        slow_down_commit(cfg.slow_save_step)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6, 6, 1)).astype(np.float32)  # 12 steps per epoch, 4 dropped
    y = (x[:, :3].mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    net = jc.serial(jc.conv(2, 3), jc.relu(), jc.flatten(), jc.dropout(0.3), jc.dense(2))

    def pause(row):
        if row["kind"] == "step" and cfg.sleep:
            time.sleep(cfg.sleep)

    result = fit(net, optax.sgd(cfg.lr, momentum=0.9), (x, y), val=(x[:20], y[:20]),
                 epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed, workdir=cfg.workdir,
                 resume=cfg.resume, config=dataclasses.asdict(cfg), ensemble=cfg.ensemble,
                 checkpoint_every=cfg.checkpoint_every, log_every=1, keep_best=False,
                 progress=False, callback=pause)
    leaves = jax.tree.leaves(jax.device_get(result.train_state))
    np.savez(f"{cfg.workdir}/final.npz", *leaves)


if __name__ == "__main__":
    main()
