"""Sample videos along camera trajectories: `python sample.py ckpt=... trajectory=zoom_in`."""

import hydra
from omegaconf import DictConfig

import vid3d.config  # noqa: F401  (registers config resolvers)


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    from vid3d.errors import user_errors
    from vid3d.tasks.preflight import check_inputs

    with user_errors():  # the user's cheap-to-find mistakes answer before the heavy imports (< 3 s)
        check_inputs(cfg, "sample")
    from vid3d.tasks.sample import sample

    with user_errors():
        sample(cfg)


if __name__ == "__main__":
    from vid3d.config_errors import install

    install()  # a mistyped group, option or key: one line with "did you mean", exit 2
    main()
