# The notebook's cells in PyTorch; writes the transcript nabla-seed must reproduce.
# Run with /usr/bin/python3 (python3-torch 1.13):  seed_notebook.py SEED > seed_transcript_SEED.txt
# Lines starting with '#' are cell headers: the comparison skips them.
import sys
import warnings

import torch

warnings.simplefilter("ignore")  # the non-leaf .grad warning goes to stderr in both
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
torch.manual_seed(seed)

print("# [1] tensors")
x = torch.ones(5)
y = torch.ones(3)
w = torch.randn(5, 3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
print(x)
print(x.shape)
print(y.shape)
print(w.shape)
print(x.T.shape)
print(w)
print(b)
print("# [2] forward")
z = torch.matmul(x, w) + b
print(z)
print(z.shape)
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
print(loss.item())
print("# [3] the graph")
print(z.grad_fn)
print(w.grad)
print("# [4] backward")
loss.backward()
print(w.grad)
print(b.grad)
print(z.grad)
print("# [5] no_grad")
z = torch.matmul(x, w) + b
print(z.requires_grad)
with torch.no_grad():
    z = torch.matmul(x, w) + b
print(z.requires_grad)
z = torch.matmul(x, w) + b
z_det = z.detach()
print(z_det.requires_grad)
