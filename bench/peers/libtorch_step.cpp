// A training step in libtorch (C++), the peer of bench-train's rows: W3 (X[256,784] → Linear
// 512 → ReLU → Linear 10 → cross_entropy → backward → SGD lr 0.01) or T (784-256-128-10 ReLU
// MLP, Adam lr 1e-3, batch 128), with the inputs made as bench-train makes them (bytes / 255,
// labels 0..9) and the grads set to None before each step, as nabla-train does. Built only
// with -DNB_BENCH_PEERS=ON where libtorch is found. Set OPENBLAS_NUM_THREADS to the thread
// count and OMP_WAIT_POLICY=PASSIVE (scripts/bench_step_peer.sh does).
//   bench-peer-libtorch-step W3|T [threads] [seconds]   → median ms per step
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace
{

double now_s()
{
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

} // namespace

int main(int argc, char **argv)
{
    bool w3 = argc < 2 || std::strcmp(argv[1], "T") != 0;
    int threads = argc > 2 ? std::atoi(argv[2]) : 1;
    double seconds = argc > 3 ? std::atof(argv[3]) : 3.0;
    at::set_num_threads(threads);
    torch::manual_seed(0);

    std::vector<int64_t> dims =
        w3 ? std::vector<int64_t>{784, 512, 10} : std::vector<int64_t>{784, 256, 128, 10};
    int64_t batch = w3 ? 256 : 128;
    torch::nn::Sequential model;
    for (size_t l = 0; l + 1 < dims.size(); l++) {
        model->push_back(torch::nn::Linear(dims[l], dims[l + 1]));
        if (l + 2 < dims.size()) model->push_back(torch::nn::ReLU());
    }
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (w3)
        opt = std::make_unique<torch::optim::SGD>(model->parameters(),
                                                  torch::optim::SGDOptions(0.01));
    else
        opt = std::make_unique<torch::optim::Adam>(model->parameters(),
                                                   torch::optim::AdamOptions(1e-3));
    auto x = torch::randint(0, 256, {batch, dims[0]}).to(torch::kFloat) / 255;
    auto y = torch::randint(0, 10, {batch}, torch::kLong);

    auto step = [&] {
        for (auto &p : model->parameters()) p.mutable_grad().reset();
        auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
        loss.backward();
        opt->step();
    };
    double t0 = now_s();
    int warm = 0;
    while (now_s() - t0 < 0.2 || warm < 5) {
        step();
        warm++;
    }
    std::vector<double> ms;
    t0 = now_s();
    while (now_s() - t0 < seconds || ms.size() < 11) {
        double s = now_s();
        step();
        ms.push_back((now_s() - s) * 1e3);
    }
    std::sort(ms.begin(), ms.end());
    size_t n = ms.size(); // the median as bench-train's (nbb_median): the middle two's mean
    std::printf("%.4f\n", n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]));
    return 0;
}
