"""The benchmark cases: one function per op, registered with `@case`. Each builds its inputs
once and returns (work per call, {implementation: callable}); the harness times the callables.
To add a case, write one more function like these."""
from __future__ import annotations

import numpy as np

import gpubk as K

from . import formulas as f
from .harness import case

ROWS = [(256, 256), (4096, 4096), (65536, 128), (1_000_000, 10)]  # long, medium, short rows
QUICK_ROWS = [(256, 256), (1024, 1024)]


def _rows_inputs(ctx, shape):
    x, dy = ctx.normal(shape), ctx.normal(shape)
    return x, dy, ctx.one_hot(shape[0], shape[1]), ctx.normal(shape[:1])


TINY = ["x + y (4,)", "dot (4, 4)", "softmax (2, 4)"]


@case("tiny ops", sizes=TINY, quick_sizes=TINY)
def tiny_ops(ctx, which):
    """One op on a tiny tensor: what a call costs beyond its arithmetic (dispatch)."""
    shape = {"x + y (4,)": (4,), "dot (4, 4)": (4, 4), "softmax (2, 4)": (2, 4)}[which]
    a, b = ctx.normal(shape), ctx.normal(shape)
    ka, kb = ctx.tensor(a), ctx.tensor(b)
    ours = {"x + y (4,)": lambda: ka + kb, "dot (4, 4)": lambda: K.dot(ka, kb),
            "softmax (2, 4)": lambda: K.softmax(ka)}[which]

    def naive(xp):
        p, q = xp.asarray(a), xp.asarray(b)
        return {"x + y (4,)": lambda: p + q, "dot (4, 4)": lambda: p @ q,
                "softmax (2, 4)": lambda: f.softmax(xp, p)}[which]

    def torch_impl():
        p, q = ctx.torch_tensor(a), ctx.torch_tensor(b)
        return {"x + y (4,)": lambda: p + q, "dot (4, 4)": lambda: p @ q,
                "softmax (2, 4)": lambda: ctx.torch.softmax(p, -1)}[which]

    return 2 * a.nbytes, ctx.implementations(gpubk=ours, naive=naive, torch=torch_impl)


@case("elementwise chain", sizes=[(4,), (4096,), (1 << 20,), (1 << 24,)],
      quick_sizes=[(4,), (4096,), (1 << 20,)])
def elementwise_chain(ctx, shape):
    """relu(2x + 1): three gpubk ops (tiny sizes show the dispatch overhead)."""
    x = ctx.normal(shape)
    kx = ctx.tensor(x)

    def naive(xp):
        a = xp.asarray(x)
        return lambda: xp.maximum(a * 2 + 1, 0)

    def torch_impl():
        t = ctx.torch_tensor(x)
        return lambda: ctx.torch.relu(t * 2 + 1)

    def jax_impl():
        a, fn = ctx.jax_array(x), ctx.jax.jit(lambda v: ctx.jax.numpy.maximum(v * 2 + 1, 0))
        return lambda: fn(a).block_until_ready()

    return 2 * x.nbytes, ctx.implementations(gpubk=lambda: K.relu(kx * 2.0 + 1.0), naive=naive,
                                             torch=torch_impl, jax=jax_impl)


@case("copy", sizes=ROWS, quick_sizes=QUICK_ROWS)
def copy(ctx, shape):
    """A copy into a new array at the row ops' sizes: the bandwidth they can hope for."""
    x = ctx.normal(shape)
    kx = ctx.tensor(x)

    def naive(xp):
        a = xp.asarray(x)
        return lambda: a.copy()

    def torch_impl():
        t = ctx.torch_tensor(x)
        return lambda: t.clone()

    return 2 * x.nbytes, ctx.implementations(gpubk=lambda: K.to_device(kx, ctx.device),
                                             naive=naive, torch=torch_impl)


def _row_op_case(name, gpubk_fn, naive_fn, torch_fn, jax_fn, seed: str | None = None):
    """Registers a row op on (rows, classes) inputs x, dy, t (one-hot), g (one per row):
    forward only, or forward+backward when `seed` names the output gradient ("dy" or "g")."""
    @case(name, sizes=ROWS, quick_sizes=QUICK_ROWS)
    def run(ctx, shape):
        x, dy, t, g = _rows_inputs(ctx, shape)
        host = {"x": x, "dy": dy, "t": t, "g": g}
        dev = {k: ctx.device_array(v) for k, v in host.items()}
        ks = {k: ctx.tensor(v) for k, v in host.items()}
        if name.startswith("cce probs"):  # probabilities: positive, unnormalised
            host["x"] = np.abs(x) + np.float32(0.1)
            dev["x"], ks["x"] = ctx.device_array(host["x"]), ctx.tensor(host["x"])

        def naive(xp):
            a = host if xp is np else dev
            return lambda: naive_fn(xp, a)

        def torch_impl():
            ts = {k: ctx.torch_tensor(v, grad=k == "x" and seed is not None)
                  for k, v in host.items()}
            if seed is not None:
                return lambda: ctx.torch.autograd.grad(torch_fn(ctx.torch, ts), ts["x"],
                                                       ts[seed])[0]
            return lambda: torch_fn(ctx.torch, ts)

        def jax_impl():
            arrays = {k: ctx.jax_array(v) for k, v in host.items()}
            fn = ctx.jax.jit(lambda a: jax_fn(ctx.jax, a))
            return lambda: ctx.jax.block_until_ready(fn(arrays))

        work = (5 if seed else 2) * x.nbytes  # forward reads x, writes y; backward 3 more
        return work, ctx.implementations(gpubk=lambda: gpubk_fn(ks), naive=naive,
                                         torch=torch_impl, jax=jax_impl)
    return run


def _jax_grad(jax, fn, a, seed):
    value, pullback = jax.vjp(fn, a["x"])
    return value, pullback(seed)[0]


_row_op_case("softmax", lambda k: K.softmax(k["x"]), lambda xp, a: f.softmax(xp, a["x"]),
             lambda torch, a: torch.softmax(a["x"], -1),
             lambda jax, a: f.softmax(jax.numpy, a["x"]))
_row_op_case("softmax+grad", lambda k: f.gpubk_grad(K.softmax, k["x"], k["dy"]),
             lambda xp, a: f.softmax_grad(f.softmax(xp, a["x"]), a["dy"]),
             lambda torch, a: torch.softmax(a["x"], -1),
             lambda jax, a: _jax_grad(jax, lambda x: f.softmax(jax.numpy, x), a, a["dy"]),
             seed="dy")
_row_op_case("log_softmax", lambda k: K.log_softmax(k["x"]),
             lambda xp, a: f.log_softmax(xp, a["x"]),
             lambda torch, a: torch.log_softmax(a["x"], -1),
             lambda jax, a: f.log_softmax(jax.numpy, a["x"]))
_row_op_case("log_softmax+grad", lambda k: f.gpubk_grad(K.log_softmax, k["x"], k["dy"]),
             lambda xp, a: f.log_softmax_grad(xp, f.log_softmax(xp, a["x"]), a["dy"]),
             lambda torch, a: torch.log_softmax(a["x"], -1),
             lambda jax, a: _jax_grad(jax, lambda x: f.log_softmax(jax.numpy, x), a, a["dy"]),
             seed="dy")
_row_op_case("cce probs", lambda k: K.categorical_crossentropy(k["t"], k["x"]),
             lambda xp, a: f.probs_loss(xp, a["t"], a["x"]),
             lambda torch, a: f.probs_loss(torch, a["t"], a["x"]),
             lambda jax, a: f.probs_loss(jax.numpy, a["t"], a["x"]))
_row_op_case("cce probs+grad",
             lambda k: f.gpubk_grad(lambda p: K.categorical_crossentropy(k["t"], p), k["x"],
                                    k["g"]),
             lambda xp, a: (f.probs_loss(xp, a["t"], a["x"]),
                            f.probs_grad(xp, a["t"], a["x"], a["g"])),
             lambda torch, a: f.probs_loss(torch, a["t"], a["x"]),
             lambda jax, a: _jax_grad(jax, lambda p: f.probs_loss(jax.numpy, a["t"], p), a,
                                      a["g"]), seed="g")
_row_op_case("cce logits", lambda k: K.categorical_crossentropy(k["t"], k["x"], True),
             lambda xp, a: f.logits_loss(xp, a["t"], a["x"]),
             lambda torch, a: torch.nn.functional.cross_entropy(a["x"], a["t"], reduction="none"),
             lambda jax, a: f.logits_loss(jax.numpy, a["t"], a["x"]))
_row_op_case("cce logits+grad",
             lambda k: f.gpubk_grad(lambda z: K.categorical_crossentropy(k["t"], z, True),
                                    k["x"], k["g"]),
             lambda xp, a: (f.logits_loss(xp, a["t"], a["x"]),
                            f.logits_grad(xp, a["t"], a["x"], a["g"])),
             lambda torch, a: torch.nn.functional.cross_entropy(a["x"], a["t"], reduction="none"),
             lambda jax, a: _jax_grad(jax, lambda z: f.logits_loss(jax.numpy, a["t"], z), a,
                                      a["g"]), seed="g")


@case("matmul", sizes=[(64,), (512,), (2048,)], quick_sizes=[(64,), (256,), (512,)],
      unit="FLOP")
def matmul(ctx, size):
    (n,) = size
    a, b = ctx.normal((n, n)), ctx.normal((n, n))
    ka, kb = ctx.tensor(a), ctx.tensor(b)
    da, db = ctx.device_array(a), ctx.device_array(b)
    return 2.0 * n ** 3, ctx.implementations(
        gpubk=lambda: K.dot(ka, kb),
        naive=lambda xp: (lambda p=a if xp is np else da, q=b if xp is np else db:
                          lambda: p @ q)(),
        torch=lambda: (lambda p=ctx.torch_tensor(a), q=ctx.torch_tensor(b): lambda: p @ q)(),
        jax=lambda: (lambda p=ctx.jax_array(a), q=ctx.jax_array(b):
                     lambda: (p @ q).block_until_ready())())


def _mlp_loss(x, t, params):
    """The MLP's mean softmax crossentropy, with gpubk ops (eager or symbolic)."""
    h = x
    for w in params[:-1]:
        h = K.relu(K.dot(h, w))
    return K.mean(K.categorical_crossentropy(t, K.softmax(K.dot(h, params[-1]))))


MLP_SIZES = (784, 512, 512, 10)


def _mlp_flops(batch, sizes=MLP_SIZES):
    params = sum(n * m for n, m in zip(sizes[:-1], sizes[1:]))
    return 6.0 * batch * params  # forward 2BP, backward 4BP


def _mlp_inputs(ctx, batch: int):
    """A batch (x, one-hot t) and He-initialised weights for the MLP, as host arrays."""
    x, t = ctx.normal((batch, MLP_SIZES[0])), ctx.one_hot(batch, MLP_SIZES[-1])
    weights = [ctx.normal((n, m)) * np.float32(np.sqrt(2.0 / n))
               for n, m in zip(MLP_SIZES[:-1], MLP_SIZES[1:])]
    return x, t, weights


def _eager_sgd_step(x, t, params, lr=0.01):
    """One eager SGD step with K.gradients and K.update_sub."""
    loss = _mlp_loss(x, t, params)
    for p, g in zip(params, K.gradients(loss, params)):
        K.update_sub(p, lr * g)


@case("mlp step", sizes=[(256,)], quick_sizes=[(64,)], unit="FLOP")
def mlp_step(ctx, size):
    """One SGD step of an MLP 784-512-512-10 (relu, softmax crossentropy) on a batch."""
    (batch,) = size
    x, t, weights = _mlp_inputs(ctx, batch)
    params = [K.variable(ctx.device_array(w)) for w in weights]
    kx, kt = ctx.tensor(x), ctx.tensor(t)

    def naive(xp):
        ws = [xp.asarray(w) for w in weights]
        xs, ts = xp.asarray(x), xp.asarray(t)

        def step():
            acts = [xs]
            for w in ws[:-1]:
                acts.append(xp.maximum(acts[-1] @ w, 0))
            grad = (f.softmax(xp, acts[-1] @ ws[-1]) - ts) / batch
            for i in range(len(ws) - 1, -1, -1):
                gw = acts[i].T @ grad
                if i:
                    grad = (grad @ ws[i].T) * (acts[i] > 0)
                ws[i] -= 0.01 * gw
        return step

    def torch_impl():
        torch = ctx.torch
        ws = [ctx.torch_tensor(w, grad=True) for w in weights]
        tx, tt = ctx.torch_tensor(x), ctx.torch_tensor(t)

        def step():
            h = tx
            for w in ws[:-1]:
                h = torch.relu(h @ w)
            loss = torch.nn.functional.cross_entropy(h @ ws[-1], tt)
            for w, g in zip(ws, torch.autograd.grad(loss, ws)):
                with torch.no_grad():
                    w -= 0.01 * g
        return step

    return _mlp_flops(batch), ctx.implementations(
        gpubk=lambda: _eager_sgd_step(kx, kt, params), naive=naive, torch=torch_impl)


def _graph_case_impls(ctx, forward, inputs):
    """The same computation eagerly and as one K.function of placeholders."""
    placeholders = [K.placeholder(shape=(None,) + a.shape[1:]) for a in inputs]
    compiled = K.function(placeholders, forward(*placeholders))
    tensors = [ctx.tensor(a) for a in inputs]
    feeds = [ctx.device_array(a) for a in inputs]

    def eager():
        outputs = forward(*tensors)
        return [K.eval(o) for o in (outputs if isinstance(outputs, list) else [outputs])]

    return {"eager": eager, "graph": lambda: compiled(feeds)}


@case("function: small graph", sizes=[(8,)], quick_sizes=[(8,)])
def graph_small(ctx, size):
    """A few ops on a batch of 8: K.function's per-call overhead against eager evaluation."""
    (batch,) = size
    w = K.variable(ctx.device_array(ctx.normal((16, 4))))
    x, t = ctx.normal((batch, 16)), ctx.one_hot(batch, 4)

    def forward(xs, ts):
        return [K.mean(K.categorical_crossentropy(ts, K.softmax(K.dot(K.tanh(xs), w))))]
    impls = _graph_case_impls(ctx, forward, [x, t])
    K.clear_session()  # leave graph mode, so that the other cases run eagerly
    return 2 * x.nbytes, impls


@case("function: mlp step", sizes=[(256,)], quick_sizes=[(64,)], unit="FLOP")
def graph_mlp_step(ctx, size):
    """An SGD step of the MLP 784-512-512-10, eagerly and compiled with updates."""
    (batch,) = size
    x, t, weights = _mlp_inputs(ctx, batch)
    eager_params = [K.variable(ctx.device_array(w)) for w in weights]
    graph_params = [K.variable(ctx.device_array(w)) for w in weights]
    kx, kt = ctx.tensor(x), ctx.tensor(t)
    xp = K.placeholder(shape=(None, MLP_SIZES[0]))
    tp = K.placeholder(shape=(None, MLP_SIZES[-1]))
    loss = _mlp_loss(xp, tp, graph_params)
    step = K.function([xp, tp], [loss], updates=[
        (p, p - 0.01 * g) for p, g in zip(graph_params, K.gradients(loss, graph_params))])
    feeds = [ctx.device_array(x), ctx.device_array(t)]
    K.clear_session()
    return _mlp_flops(batch), {"eager": lambda: _eager_sgd_step(kx, kt, eager_params),
                               "graph": lambda: step(feeds)}


OFFSETS_3X3 = [(a, c) for a in range(3) for c in range(3)]


def _pad_same_3x3(xp, x):
    return xp.pad(xp.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))


def _naive_conv_3x3(padded, kernel, h: int, w: int):
    """conv2d of a 'same'-padded input with a 3x3 kernel: one matrix product per kernel offset,
    summed (composed from array ops)."""
    return sum(padded[:, a:a + h, c:c + w, :] @ kernel[a, c] for a, c in OFFSETS_3X3)


def _conv_flops(batch, out_hw, kernel):
    kh, kw, cin, cout = kernel
    return 2.0 * batch * out_hw[0] * out_hw[1] * kh * kw * cin * cout


@case("conv2d", sizes=[(32, 32, 32, 3, 64)], quick_sizes=[(8, 32, 32, 3, 64)], unit="FLOP")
def conv2d_case(ctx, size):
    """conv2d, 'same' padding, channels last (PyTorch: the same data, channels first)."""
    batch, h, w, cin, cout = size
    x, k = ctx.normal((batch, h, w, cin)), ctx.normal((3, 3, cin, cout))
    kx, kk = ctx.tensor(x), ctx.tensor(k)

    def torch_impl():
        tx = ctx.torch_tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        tk = ctx.torch_tensor(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
        return lambda: ctx.torch.nn.functional.conv2d(tx, tk, padding=1)

    def naive(xp):
        padded, kernel = _pad_same_3x3(xp, x), xp.asarray(k)
        return lambda: _naive_conv_3x3(padded, kernel, h, w)

    return _conv_flops(batch, (h, w), k.shape), ctx.implementations(
        gpubk=lambda: K.conv2d(kx, kk, padding="same"), naive=naive, torch=torch_impl)


@case("conv2d+grad", sizes=[(32, 32, 32, 3, 64)], quick_sizes=[(8, 32, 32, 3, 64)],
      unit="FLOP")
def conv2d_grad_case(ctx, size):
    """conv2d forward and backward (gradients of input and kernel)."""
    batch, h, w, cin, cout = size
    x, k = ctx.normal((batch, h, w, cin)), ctx.normal((3, 3, cin, cout))
    dy = ctx.normal((batch, h, w, cout))
    kx, kk, kdy = ctx.tensor(x), ctx.tensor(k), ctx.tensor(dy)

    def gpubk_impl():
        with K.GradientTape() as tape:
            tape.watch([kx, kk])
            y = K.conv2d(kx, kk, padding="same")
        return tape.gradient(y, [kx, kk], output_gradients=kdy)

    def torch_impl():
        torch = ctx.torch
        tx = ctx.torch_tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), grad=True)
        tk = ctx.torch_tensor(np.ascontiguousarray(k.transpose(3, 2, 0, 1)), grad=True)
        tdy = ctx.torch_tensor(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))
        return lambda: torch.autograd.grad(torch.nn.functional.conv2d(tx, tk, padding=1),
                                           [tx, tk], tdy)

    def naive(xp):
        """The composed forward and its two gradients, one matrix product per kernel offset."""
        padded, kernel, grad = _pad_same_3x3(xp, x), xp.asarray(k), xp.asarray(dy)

        def forward_backward():
            y = _naive_conv_3x3(padded, kernel, h, w)
            d_padded, d_kernel = xp.zeros_like(padded), xp.empty_like(kernel)
            for a, c in OFFSETS_3X3:
                d_padded[:, a:a + h, c:c + w, :] += grad @ kernel[a, c].T
                d_kernel[a, c] = xp.tensordot(padded[:, a:a + h, c:c + w, :], grad,
                                              axes=([0, 1, 2], [0, 1, 2]))
            return y, d_padded[:, 1:-1, 1:-1, :], d_kernel
        return forward_backward

    return 3 * _conv_flops(batch, (h, w), k.shape), ctx.implementations(
        gpubk=gpubk_impl, naive=naive, torch=torch_impl)
