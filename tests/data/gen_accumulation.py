#!/usr/bin/python3
"""PyTorch 1.13's answers for test_engine.c's test_accumulation_order.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_accumulation.py`.

Each case adds gradients whose exact sum is a power of two to a .grad (or a node's partial
sum) that already holds 1. PyTorch sums a leaf's gradients first and adds the sum to .grad
once, and adds a gradient to a node's partial sum once it is whole: 1 + (2^-24 + 2^-24) is
1 + 2^-23, where adding each 2^-24 to the 1 in turn would round back to 1. The values are
printed as float32 hex, the literals test_accumulation_order compares against.
"""
import torch

C = 2.0 ** -24


def show(name, t):
    print(name, " ".join(float(v).hex() for v in t.detach().reshape(-1).tolist()))


# a .grad of 1 from a first backward, then two gradients through a broadcast
x = torch.ones(2, requires_grad=True)
x.sum().backward()
(x * torch.full((2, 2), C)).sum().backward()
show("broadcast mul into .grad", x.grad)

# a .grad of 1, then two uses of the leaf
x = torch.ones(1, requires_grad=True)
x.sum().backward()
(x * C + x * C).sum().backward()
show("two uses into .grad", x.grad)

# a weight's .grad of 1, then two products with it
W = torch.ones(1, 1, requires_grad=True)
W.sum().backward()
B = torch.ones(1, 1) * C
(B @ W + B @ W).sum().backward()
show("two matmuls into .grad", W.grad)

# no .grad before: a non-leaf's partial sum of 1, then a broadcast gradient added to it
x = torch.ones(2, requires_grad=True)
h = x * 1.0
y = (h * torch.full((2, 2), C)).sum() + (h * 1.0).sum()
y.backward()
show("broadcast into a partial sum", x.grad)

# the version of .grad moves once per backward, however many gradients reach the leaf
x = torch.ones(2, requires_grad=True)
x.sum().backward()
v0 = x.grad._version
(x * 2 + (x * 3 + x.exp())).sum().backward()
print("version step", x.grad._version - v0)
