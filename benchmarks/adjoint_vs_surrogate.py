"""Adjoint gradients against surrogate BPTT on one problem, with finite differences as referee.

Usage: .venv/bin/python benchmarks/adjoint_vs_surrogate.py [--steps 60 --batch 2 --neurons 4]

The problem (float64): a feed-forward LIF layer driven by ``x`` (T, B, N), its spikes read out by
a leaky integrator through fixed weights, and the squared error of the readout against a target,
summed over time.  The script prints, for the gradient with respect to ``x``:

- the finite differences of the loss as it is (binary spikes): zero wherever no perturbation
  changes a spike — the loss is piecewise constant, so every spiking gradient is a model of
  something else;
- the finite differences of the *relaxed* loss of docs/models-adjoint.md (spikes as events at
  interpolated times, moving their output and reset): what ``adjoint=True`` computes;
- the adjoint gradient and the surrogate gradients (``super`` at two sharpnesses) against that
  reference: relative error, cosine similarity, the share of inputs with a non-zero gradient;
- the loss as it is after a step of each gradient (normalised to the same length), to see which
  directions lower it.

The relaxed system is coded here independently of ``snn_lif.adjoint`` (see the tests for the same
check element by element).
"""

from __future__ import annotations

import argparse

import torch
from snn_lif import LIF, LIFFeedForwardState, LIFParameters

F64 = torch.float64
DT, A, B = 0.001, 0.1, 0.2  # a = dt·tau_mem_inv, b = dt·tau_syn_inv
V_LEAK, V_TH, V_RESET = 0.0, 1.0, 0.0


def parameters(method: str = "super", alpha: float = 100.0) -> LIFParameters:
    values = {"tau_syn_inv": 200.0, "tau_mem_inv": 100.0, "v_leak": V_LEAK, "v_th": V_TH}
    tensors = {k: torch.tensor(v, dtype=F64) for k, v in {**values, "v_reset": V_RESET}.items()}
    return LIFParameters(**tensors, method=method, alpha=torch.tensor(alpha, dtype=F64))


def relaxed(x, v, i, pattern, theta0):
    """Spikes ẑ of the relaxed system at the base pattern (``theta0=None``: the base point)."""
    out = torch.zeros((x.shape[0] + 1, *x.shape[1:]), dtype=F64)
    thetas = torch.zeros_like(x)
    for t in range(x.shape[0]):
        i1 = i + x[t]
        v1 = v + A * ((V_LEAK - v) + i1)
        i = i1 - B * i1
        spike = pattern[t].bool()
        crossing = spike & (v < V_TH)
        theta = torch.where(crossing, (V_TH - v) / (v1 - v), 0.0)
        shift = torch.zeros_like(theta) if theta0 is None else theta - theta0[t]
        shift = torch.where(crossing, shift, 0.0)
        out[t] += pattern[t] - shift
        out[t + 1] += shift
        v = torch.where(spike, V_RESET - A * ((V_LEAK - V_RESET) + i1) * shift, v1)
        thetas[t] = theta
    return out[:-1], thetas


def readout_loss(spikes, w_out, target):
    r_i = torch.zeros(spikes.shape[1], w_out.shape[0], dtype=F64)
    r_v = torch.zeros_like(r_i)
    loss = 0.0
    for t in range(spikes.shape[0]):
        r_i = r_i + spikes[t] @ w_out.T
        r_v = r_v + 0.05 * (r_i - r_v)
        r_i = 0.9 * r_i
        loss = loss + ((r_v - target[t]) ** 2).sum()
    return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--neurons", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    shape = (args.steps, args.batch, args.neurons)
    x = torch.rand(shape, generator=g, dtype=F64) * 0.6
    w_out = torch.randn(3, args.neurons, generator=g, dtype=F64)
    target = torch.randn(args.steps, args.batch, 3, generator=g, dtype=F64) * 0.2
    zeros = torch.zeros(shape[1:], dtype=F64)
    state = LIFFeedForwardState(zeros, zeros)

    def loss_of(layer, x):
        spikes, _ = layer(x, state)
        return readout_loss(spikes, w_out, target), spikes

    def gradient(layer):
        leaf = x.clone().requires_grad_(True)
        loss, _ = loss_of(layer, leaf)
        loss.backward()
        return leaf.grad

    with torch.no_grad():
        base_loss, pattern = loss_of(LIF(parameters()), x)
    _, theta0 = relaxed(x, zeros, zeros, pattern, None)
    eps, true_fd, relaxed_fd = 1e-6, torch.zeros_like(x), torch.zeros_like(x)
    with torch.no_grad():
        for index in range(x.numel()):
            values, true_values = [], []
            for sign in (1.0, -1.0):
                moved = x.clone()
                moved.view(-1)[index] += sign * eps
                loss, spikes = loss_of(LIF(parameters()), moved)
                assert torch.equal(spikes, pattern), "a perturbation changed the spikes"
                true_values.append(loss)
                values.append(
                    readout_loss(relaxed(moved, zeros, zeros, pattern, theta0)[0], w_out, target)
                )
            true_fd.view(-1)[index] = (true_values[0] - true_values[1]) / (2 * eps)
            relaxed_fd.view(-1)[index] = (values[0] - values[1]) / (2 * eps)

    grads = {
        "adjoint": gradient(LIF(parameters(), adjoint=True)),
        "surrogate super alpha=100": gradient(LIF(parameters("super", 100.0))),
        "surrogate super alpha=10": gradient(LIF(parameters("super", 10.0))),
    }
    print(
        f"LIF layer T={args.steps} B={args.batch} N={args.neurons}, {int(pattern.sum())} spikes, "
        f"loss {base_loss.item():.4f}"
    )
    print(f"finite differences of the loss as it is: max |fd| = {true_fd.abs().max().item():.1e}")
    print(f"finite differences of the relaxed loss:  |fd| = {relaxed_fd.norm().item():.4f}")
    print(f"{'gradient':<27} {'rel. error':>10} {'cosine':>7} {'non-zero':>9} {'norm':>9}")
    for name, grad in grads.items():
        error = ((grad - relaxed_fd).norm() / relaxed_fd.norm()).item()
        cosine = torch.nn.functional.cosine_similarity(grad.flatten(), relaxed_fd.flatten(), 0)
        nonzero = (grad != 0).double().mean().item()
        print(
            f"{name:<27} {error:>10.2e} {cosine.item():>7.3f} {nonzero:>9.2f} "
            f"{grad.norm().item():>9.4f}"
        )
    print("loss as it is after x ← x − s·g/|g| (lower is better):")
    sizes = (0.01, 0.03, 0.1, 0.3)
    print(f"  {'s':<25} " + " ".join(f"{s:>8}" for s in sizes))
    with torch.no_grad():
        for name, grad in grads.items():
            losses = [
                loss_of(LIF(parameters()), x - s * grad / grad.norm())[0].item() for s in sizes
            ]
            print(f"  {name:<25} " + " ".join(f"{v:>8.4f}" for v in losses))
    cosine = torch.nn.functional.cosine_similarity(
        grads["adjoint"].flatten(), grads["surrogate super alpha=100"].flatten(), 0
    )
    print(f"cosine(adjoint, surrogate alpha=100) = {cosine.item():.3f}")


if __name__ == "__main__":
    main()
