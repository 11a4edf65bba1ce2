#!/usr/bin/python3
"""PyTorch 1.13's signs for test_ops_reduce.c's test_sums_never_negative_zero.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_zero_sums.py`.

A sum of zeros is +0 whatever their signs, also over one element or over dims of size 1
(PyTorch's accumulator starts at +0), and so is the gradient that sub's backward sums for a
broadcast second operand: sum_to(-g). Each line prints the sign (1 for +0, -1 for -0) of
every element.
"""
import torch


def signs(t):
    return " ".join(str(int(v)) for v in torch.copysign(torch.ones_like(t), t).reshape(-1).tolist())


z = torch.tensor([-0.0])
print("sum of [-0]", signs(z.sum()))
print("mean of [-0]", signs(z.mean()))
z21 = torch.full((2, 1), -0.0)
print("sum of [[-0], [-0]] over dim 1", signs(z21.sum(1)))
print("mean of [[-0], [-0]] over dim 1, keepdim", signs(z21.mean(1, keepdim=True)))
print("sum of 64 -0", signs(torch.full((64,), -0.0).sum()))
for shape in ((1,), ()):
    a = torch.ones(2, 2, requires_grad=True)
    b = torch.zeros(shape, requires_grad=True)
    (a - b).backward(torch.tensor([[0.0, -0.0], [-0.0, -0.0]]))
    print(f"sub's db for b {list(shape)}", signs(b.grad))
