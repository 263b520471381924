"""Train a camera-controlled video diffusion model: `python train.py model=epipolar data=re10k`."""

import hydra
from omegaconf import DictConfig

import vid3d.config  # noqa: F401  (registers config resolvers)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # with post_eval: the value a Hydra sweeper optimises (hparams_search=optuna); else None
    from vid3d.errors import user_errors
    from vid3d.tasks.preflight import check_inputs

    with user_errors():  # the user's cheap-to-find mistakes, the backbone choice and its pretrained files
        check_inputs(cfg, "train")  # answer before the heavy imports (seconds)
        from vid3d.tasks.recipe import preflight

        preflight(cfg)
    from vid3d.tasks.objective import sweep_objective
    from vid3d.tasks.train import train

    with user_errors():
        return sweep_objective(cfg, train(cfg))


if __name__ == "__main__":
    from vid3d.config_errors import install

    install()  # a mistyped group, option or key: one line with "did you mean", exit 2
    main()
