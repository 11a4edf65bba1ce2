// W1 in libtorch (C++), the peer BENCHMARKS.md measures: the seed graph, forward, backward,
// grads to None, per iteration. Built only with -DNB_BENCH_PEERS=ON where libtorch is found.
//   bench-peer-libtorch-w1 [iterations per sample] [samples]   → median ns per iteration
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char **argv)
{
    int iters = argc > 1 ? std::atoi(argv[1]) : 2000;
    int samples = argc > 2 ? std::atoi(argv[2]) : 15;
    at::set_num_threads(1);
    torch::manual_seed(0);
    auto x = torch::ones({5});
    auto y = torch::ones({3});
    auto w = torch::randn({5, 3}, torch::requires_grad());
    auto b = torch::randn({3}, torch::requires_grad());
    auto step = [&] {
        auto z = torch::matmul(x, w) + b;
        auto loss = torch::binary_cross_entropy_with_logits(z, y);
        loss.backward();
        w.mutable_grad().reset();
        b.mutable_grad().reset();
    };
    for (int i = 0; i < iters; i++) step(); // warm-up
    std::vector<double> ns;
    for (int s = 0; s < samples; s++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; i++) step();
        auto t1 = std::chrono::steady_clock::now();
        ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / iters);
    }
    std::sort(ns.begin(), ns.end());
    size_t n = ns.size(); // the median as bench-autograd's (nbb_median): the middle two's mean
    std::printf("%.1f\n", n % 2 ? ns[n / 2] : 0.5 * (ns[n / 2 - 1] + ns[n / 2]));
    return 0;
}
