"""Hydra overrides shared by the task tests: a tiny synthetic set built on first use and a tiny run."""

# the smallest clip size the whole path supports, for any data option
TINY_SIZE = [
    "data.num_frames=4",
    "data.height=64",
    "data.width=96",
    "data.datamodule.num_workers=0",
    "torch_threads=1",
]

# train.py/eval.py on the embedded synthetic set at that size
TINY_DATA = [
    "torch_threads=1",
    "data.build.num_train=2",
    "data.build.num_test=1",
    "data.build.num_frames=12",
    "data.build.height=72",
    "data.build.width=128",
    "data.num_frames=4",
    "data.height=64",
    "data.width=96",
    "data.datamodule.num_workers=0",
    "data.datamodule.batch_size=1",
]

# a train -> score job (post_eval=camera): two steps, two sampler steps, GT poses
TINY_SWEEP = [
    *TINY_DATA,
    "trainer.max_steps=2",
    "module.warmup_steps=1",
    "post_eval.sampler_steps=2",
    "post_eval.pose=gt",
]
