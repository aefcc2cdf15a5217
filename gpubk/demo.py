"""`gpubk demo`: trains an MLP (or, with `--model cnn`, a small convnet) on scikit-learn's
bundled handwritten digits (1,797 8x8 images, no download) with gpubk ops only, on the current
device; reports the test accuracy, writes a plot of the training curves and the weights."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import gpubk as K

DIGITS = 1797  # images in scikit-learn's bundled set
TEST_IMAGES = 360
TRAIN_IMAGES = DIGITS - TEST_IMAGES
DEFAULT_OUT = {"mlp": "gpubk-demo", "cnn": "gpubk-demo-cnn"}  # one folder per model


def load_digits(seed: int, subset: int | None = None):
    """(x_train, y_train, x_test, y_test): pixels scaled to [0, 1], a fixed held-out split."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise SystemExit("gpubk demo: needs scikit-learn for its bundled digits; install gpubk "
                         "with the 'examples' extra") from None
    digits = sklearn_digits()
    x = (digits.data / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:TEST_IMAGES], order[TEST_IMAGES:]
    if subset:
        train = train[:subset]
    return x[train], digits.target[train], x[test], digits.target[test]


def init_params(shapes, rng) -> list:
    """He-initialised weights (dense matrices or convolution kernels) and zero biases, as gpubk
    variables: [W0, b0, W1, b1, ...]."""
    params = []
    for i, shape in enumerate(shapes):
        fan_in = int(np.prod(shape[:-1]))
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        params += [K.variable(w, name=f"W{i}"), K.zeros((shape[-1],), name=f"b{i}")]
    return params


def model_shapes(model: str, hidden: int) -> list:
    """The weight shapes of the MLP 64-hidden-hidden-10, or of the small convnet: two 3x3
    convolutions (16 and 32 channels), each followed by 2x2 max pooling, then dense 128-10."""
    if model == "cnn":
        return [(3, 3, 1, 16), (3, 3, 16, 32), (2 * 2 * 32, 10)]
    return [(64, hidden), (hidden, hidden), (hidden, 10)]


def describe(model: str, hidden: int) -> str:
    if model == "cnn":
        return "convnet conv3x3(16)-pool-conv3x3(32)-pool-dense(10)"
    return f"MLP 64-{hidden}-{hidden}-10"


def logits(params, x):
    """The class scores of images x (batch, 64): a convnet when the first weight is a
    convolution kernel, else the MLP."""
    h = x
    if params[0].ndim == 4:
        h = K.reshape(h, (-1, 8, 8, 1))
        for i in range(0, len(params) - 2, 2):
            h = K.relu(K.bias_add(K.conv2d(h, params[i], padding="same"), params[i + 1]))
            h = K.pool2d(h, (2, 2), strides=(2, 2))
        h = K.batch_flatten(h)
    else:
        for i in range(0, len(params) - 2, 2):
            h = K.relu(K.dot(h, params[i]) + params[i + 1])
    return K.dot(h, params[-2]) + params[-1]


def predict(params, x: np.ndarray) -> np.ndarray:
    with K.no_grad():
        return np.argmax(K.eval(logits(params, K.constant(x))), axis=1)


class Adam:
    """Adam (Kingma & Ba) written with gpubk's variable updates."""

    def __init__(self, params, lr: float, beta1=0.9, beta2=0.999, eps=1e-7) -> None:
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.m = [K.zeros_like(p) for p in params]
        self.v = [K.zeros_like(p) for p in params]
        self.steps = 0

    def step(self, grads) -> None:
        self.steps += 1
        correction = np.sqrt(1 - self.beta2 ** self.steps) / (1 - self.beta1 ** self.steps)
        with K.no_grad():
            for i, (p, g) in enumerate(zip(self.params, grads)):
                self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
                self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * K.square(g)
                K.update_sub(p, (self.lr * correction) * self.m[i] /
                             (K.sqrt(self.v[i]) + self.eps))


def _bar(epoch: str, done: int, total: int, loss: float, per_second: float,
         width: int = 24) -> str:
    filled = width * done // total
    return (f"{epoch} [{'#' * filled}{'.' * (width - filled)}] {done:>3}/{total} batches  "
            f"loss {loss:.4f}  {per_second:,.0f} images/s")


def _writable_folder(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".gpubk-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise SystemExit(f"gpubk demo: cannot write to {path!r}: {err.strerror}") from None
    return os.path.abspath(path)


def save_plot(history: dict, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = range(1, len(history["loss"]) + 1)
    left.plot(epochs, history["loss"], marker=".")
    left.set(title="training loss", xlabel="epoch", yscale="log")
    right.plot(epochs, history["test_accuracy"], marker=".", color="tab:green")
    # From 80%, or lower when a short run ends below it (else its curve is off the plot).
    bottom = min(0.8, np.floor(min(history["test_accuracy"]) * 10) / 10)
    right.set(title="test accuracy", xlabel="epoch", ylim=(bottom, 1.0))
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_weights(path: str) -> list:
    """The arrays written by the demo, in the order [W0, b0, W1, b1, ...]."""
    with np.load(path) as saved:
        return [saved[f"{kind}{i}"] for i in range(len(saved.files) // 2) for kind in "Wb"]


def train(args) -> dict:
    """Trains and returns the history, the parameters and the test data."""
    rng = np.random.default_rng(args.seed)
    x_train, y_train, x_test, y_test = load_digits(args.seed, args.subset)
    params = init_params(model_shapes(args.model, args.hidden), rng)
    optimizer = Adam(params, args.lr)
    targets = np.eye(10, dtype=np.float32)[y_train]
    history = {"loss": [], "test_accuracy": [], "seconds": []}
    batches = -(-len(x_train) // args.batch_size)
    live = sys.stdout.isatty()  # redraw the bar after each batch only on a terminal
    for epoch in range(1, args.epochs + 1):
        label = f"epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}"
        order = rng.permutation(len(x_train))
        start, total_loss = time.perf_counter(), 0.0
        for b in range(batches):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            loss = K.mean(K.categorical_crossentropy(K.constant(targets[idx]),
                                                     K.softmax(logits(params, K.constant(
                                                         x_train[idx])))))
            optimizer.step(K.gradients(loss, params))
            total_loss += float(loss) * len(idx)
            seen = min((b + 1) * args.batch_size, len(x_train))
            bar = _bar(label, b + 1, batches, total_loss / seen,
                       seen / (time.perf_counter() - start))
            if live:
                print(f"\r{bar}", end="", flush=True)
        seconds = time.perf_counter() - start
        accuracy = float(np.mean(predict(params, x_test) == y_test))
        history["loss"].append(total_loss / len(x_train))
        history["test_accuracy"].append(accuracy)
        history["seconds"].append(seconds)
        print(f"\r{bar}  test accuracy {accuracy:.2%}  {seconds:.2f} s")
    return {"history": history, "params": params, "x_test": x_test, "y_test": y_test}


def main(args) -> int:
    if args.device:
        with K.device(args.device):
            return _run(args)
    return _run(args)


def _run(args) -> int:
    out = _writable_folder(args.out or DEFAULT_OUT[args.model])
    what = f"{describe(args.model, args.hidden)} on scikit-learn's digits, device {K.get_device()}"
    print(f"gpubk demo: {what}")
    result = train(args)
    history = result["history"]
    accuracy = history["test_accuracy"][-1]
    weights_path = os.path.join(out, "weights.npz")
    plot_path = os.path.join(out, "training.png")
    np.savez(weights_path, **{p.name: K.get_value(p) for p in result["params"]})
    save_plot(history, plot_path, f"gpubk demo: {what}")
    print(f"device {K.get_device()}: test accuracy {accuracy:.2%} on {TEST_IMAGES} held-out "
          f"images, {np.mean(history['seconds']):.2f} s per epoch")
    print(f"wrote {plot_path}\nwrote {weights_path}")
    return 0
