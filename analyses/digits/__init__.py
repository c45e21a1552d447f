"""What does a small digit network trained by hand-written backprop learn, and what does it not?

Parts 1-3 of the 3Blue1Brown series on the 8x8 digits (64-16-16-10; real MNIST with
``--set mnist_dir=...``): training curves and accuracy over seeds for sigmoid/MSE and
ReLU/cross-entropy, the confusion matrix, first-layer weights as images (not clean edge
detectors), the answers to pure noise, which weights one gradient step's decrease comes
from ("bang for the buck"), and "fire together, wire together".

    from analyses.digits import Config, run
    run(Config.quick()).save("reports")
"""

from dataclasses import asdict, dataclass

import torch

from interp.report import Report
from models.digit_subject import digit_data
from models.mlp import DIGIT_PRESETS

SIGMOID, RELU = "sigmoid/MSE", "ReLU/cross-entropy"


@dataclass(frozen=True)
class Config:
    seed: int = 0
    n_seeds: int = 5
    hidden: tuple[int, ...] = (16, 16)
    sigmoid_epochs: int = int(DIGIT_PRESETS[("sigmoid", "mse")]["epochs"])
    sigmoid_mini_batch_size: int = int(DIGIT_PRESETS[("sigmoid", "mse")]["mini_batch_size"])
    sigmoid_eta: float = DIGIT_PRESETS[("sigmoid", "mse")]["eta"]
    relu_epochs: int = int(DIGIT_PRESETS[("relu", "cross_entropy")]["epochs"])
    relu_mini_batch_size: int = int(DIGIT_PRESETS[("relu", "cross_entropy")]["mini_batch_size"])
    relu_eta: float = DIGIT_PRESETS[("relu", "cross_entropy")]["eta"]
    anneal: bool = True
    n_noise: int = 2000
    step_batch_size: int = 100
    top_fraction: float = 0.01
    mnist_dir: str | None = None

    def __post_init__(self) -> None:
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be at least 1, got {self.n_seeds}")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer widths, e.g. (16, 16); got {self.hidden}")
        for name in ("sigmoid_epochs", "relu_epochs", "sigmoid_mini_batch_size", "relu_mini_batch_size",
                     "n_noise", "step_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sigmoid_eta <= 0 or self.relu_eta <= 0:
            raise ValueError("learning rates sigmoid_eta and relu_eta must be positive")
        if not 0 < self.top_fraction < 1:
            raise ValueError(f"top_fraction must lie in (0, 1), e.g. 0.01; got {self.top_fraction}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(n_seeds=2, n_noise=500)

    def variants(self) -> dict[str, dict]:
        return {
            SIGMOID: {"activation": "sigmoid", "cost": "mse", "hidden": self.hidden, "epochs": self.sigmoid_epochs,
                      "mini_batch_size": self.sigmoid_mini_batch_size, "eta": self.sigmoid_eta, "anneal": self.anneal},
            RELU: {"activation": "relu", "cost": "cross_entropy", "hidden": self.hidden, "epochs": self.relu_epochs,
                   "mini_batch_size": self.relu_mini_batch_size, "eta": self.relu_eta, "anneal": self.anneal},
        }


def run(config: Config) -> Report:
    # The acceptance is "on one CPU core" (it also makes timings comparable); the caller's
    # thread count comes back afterwards, so analyses run after this one keep every core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(config)
    finally:
        torch.set_num_threads(threads)


def _run(config: Config) -> Report:
    from analyses.digits import sections
    from analyses.digits.training import accuracy_summary, trained_variants

    data = digit_data(config.mnist_dir)
    seeds = [config.seed + i for i in range(config.n_seeds)]
    variants = config.variants()
    shape = "-".join(map(str, [data.n_pixels, *config.hidden, 10]))
    report = Report("digits", f"The {shape} digit network, trained by hand-written backprop", config=asdict(config),
                    summary=f"Data: {data.name}, {len(data.y_train)} training and {len(data.y_test)} test images "
                            f"(pixels scaled to [0, 1]); every gradient comes from `models.mlp.Network.backprop` "
                            f"(the chain rule written out, no autograd). Seeds {seeds[0]}..{seeds[-1]}.")
    networks, history, runs = trained_variants(variants, seeds, config.mnist_dir)  # from the zoo
    sections.accuracy(report, config, history, runs, accuracy_summary(runs))
    main = {label: networks[(label, config.seed)] for label in variants}
    sections.confusion(report, data, main)
    sections.weights(report, data, main[SIGMOID], config.seed)
    sections.noise(report, data, main, config)
    sections.bang(report, data, main, config)
    sections.fire(report, data, main, config)
    return report


