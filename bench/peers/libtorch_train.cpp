// The main job in libtorch (C++), the peer of nabla-train in scripts/bench_vs_pytorch.sh:
// a 784-256-128-10 ReLU MLP on Fashion-MNIST, Adam lr 1e-3, batch 128, shuffled each epoch,
// images kept as uint8 and each batch converted to float / 255, grads set to None before
// each step; evaluated on the test set after each epoch. Prints nabla-train's JSON line per
// epoch ("seconds" times the training loop only, as nabla-train's does). Built only with
// -DNB_BENCH_PEERS=ON (it reads the IDX files with zlib). Set OPENBLAS_NUM_THREADS to the
// thread count and OMP_WAIT_POLICY=PASSIVE.
//   bench-peer-libtorch-train [data dir] [epochs] [threads]
#include <torch/torch.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace
{

// An IDX file (plain or gzip: gzread reads both) of unsigned bytes: its dims and data.
bool read_idx(const std::string &path, std::vector<int64_t> &dims, std::vector<uint8_t> &data)
{
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) return false;
    unsigned char head[4];
    bool ok = gzread(f, head, 4) == 4 && head[2] == 0x08;
    int64_t count = 1;
    for (int i = 0; ok && i < head[3]; i++) {
        unsigned char d[4];
        ok = gzread(f, d, 4) == 4;
        int64_t v = (int64_t)d[0] << 24 | (int64_t)d[1] << 16 | (int64_t)d[2] << 8 | d[3];
        dims.push_back(v);
        count *= v;
    }
    if (ok) {
        data.resize((size_t)count);
        ok = gzread(f, data.data(), (unsigned)count) == (int)count;
    }
    gzclose(f);
    return ok;
}

struct split {
    torch::Tensor images, labels; // uint8 [n, 784], int64 [n]
};

bool load(const std::string &dir, const char *prefix, split &out)
{
    std::vector<int64_t> di, dl;
    std::vector<uint8_t> img, lab;
    std::string p = dir + "/" + prefix;
    if (!read_idx(p + "-images-idx3-ubyte.gz", di, img) &&
        !read_idx(p + "-images-idx3-ubyte", di, img))
        return false;
    if (!read_idx(p + "-labels-idx1-ubyte.gz", dl, lab) &&
        !read_idx(p + "-labels-idx1-ubyte", dl, lab))
        return false;
    int64_t n = di[0];
    out.images = torch::from_blob(img.data(), {n, (int64_t)img.size() / n}, torch::kUInt8).clone();
    out.labels = torch::from_blob(lab.data(), {n}, torch::kUInt8).to(torch::kLong);
    return true;
}

double now_s()
{
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

} // namespace

int main(int argc, char **argv)
{
    std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int epochs = argc > 2 ? std::atoi(argv[2]) : 3;
    int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    at::set_num_threads(threads);
    split train, test;
    if (!load(dir, "train", train) || !load(dir, "t10k", test)) {
        std::fprintf(stderr, "bench-peer-libtorch-train: cannot read the IDX files in %s\n",
                     dir.c_str());
        return 1;
    }
    torch::manual_seed(0);
    torch::nn::Sequential model(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                                torch::nn::Linear(256, 128), torch::nn::ReLU(),
                                torch::nn::Linear(128, 10));
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
    const int64_t n = train.images.size(0), batch = 128;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        double start = now_s(), total = 0;
        auto order = torch::randperm(n, torch::kLong);
        for (int64_t at = 0; at < n; at += batch) {
            int64_t b = std::min(batch, n - at);
            auto rows = order.narrow(0, at, b);
            auto x = train.images.index_select(0, rows).to(torch::kFloat).div_(255);
            auto y = train.labels.index_select(0, rows);
            for (auto &p : model->parameters()) p.mutable_grad().reset();
            auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
            loss.backward();
            opt.step();
            total += loss.item<double>() * (double)b;
        }
        double seconds = now_s() - start;
        torch::NoGradGuard no_grad;
        int64_t right = 0;
        double test_loss = 0;
        for (int64_t at = 0; at < test.images.size(0); at += 1000) {
            int64_t b = std::min<int64_t>(1000, test.images.size(0) - at);
            auto x = test.images.narrow(0, at, b).to(torch::kFloat).div_(255);
            auto y = test.labels.narrow(0, at, b);
            auto out = model->forward(x);
            test_loss +=
                torch::nn::functional::cross_entropy(
                    out, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
            right += out.argmax(1).eq(y).sum().item<int64_t>();
        }
        int64_t nt = test.images.size(0);
        std::printf("{\"epoch\": %d, \"train_loss\": %.6f, \"test_loss\": %.6f, \"test_accuracy\": "
                    "%.4f, \"seconds\": %.3f}\n",
                    epoch, total / (double)n, test_loss / (double)nt, (double)right / (double)nt,
                    seconds);
        std::fflush(stdout);
    }
    return 0;
}
