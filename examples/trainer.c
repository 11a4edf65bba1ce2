/* The training loop shared by nabla-train, nabla-finetune and the trainer's tests. */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

trainer_options trainer_defaults(void)
{
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.data_dir = "/usr/share/datasets/fashion-mnist";
    o.epochs = 15;
    o.batch = 128;
    o.lr = 1e-3;
    o.optim = NB_OPTIM_ADAM;
    o.n_hidden = 2;
    o.hidden[0] = 256;
    o.hidden[1] = 128;
    o.seed = 0;
    o.shuffle = true;
    return o;
}

double trainer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

nb_module *trainer_model(int64_t in_features, const int64_t *hidden, int n_hidden, int64_t classes)
{
    nb_module *model = nb_module_sequential(NULL, 0);
    int64_t in = in_features;
    /* appended one by one, so the layers draw their parameters in order, as in Python */
    for (int i = 0; i < n_hidden && model; i++) {
        if (nb_module_append(model, nb_module_linear(in, hidden[i], true)) != NB_OK ||
            nb_module_append(model, nb_module_relu()) != NB_OK) {
            nb_module_free(model);
            return NULL;
        }
        in = hidden[i];
    }
    if (model && nb_module_append(model, nb_module_linear(in, classes, true)) != NB_OK) {
        nb_module_free(model);
        return NULL;
    }
    return model;
}

/* The index of the largest of n values (the first among ties, as torch.argmax). */
static uint8_t argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (uint8_t)best;
}

nb_status trainer_evaluate_sums(nb_module *model, const nb_dataset *ds, const int64_t *order,
                                int64_t n, eval_sums *sums, uint8_t *predictions)
{
    nb_dataloader_options lo = {.batch_size = 1000};
    nb_dataloader *dl = nb_dataloader_new(ds, &lo);
    if (!dl) return nb_last_error()->code;
    nb_status rc = order ? nb_dataloader_set_order(dl, order, n) : NB_OK;
    if (rc == NB_OK) rc = nb_dataloader_begin_epoch(dl);
    double total = 0;
    int64_t right = 0, seen = 0;
    nb_module_train(model, false);
    NB_NO_GRAD
    {
        while (rc == NB_OK) {
            nb_scope *s = nb_scope_begin();
            nb_tensor *x = NULL, *y = NULL;
            int64_t b = nb_dataloader_next(dl, &x, &y);
            nb_tensor *logits = b > 0 ? nb_module_forward(model, x) : NULL;
            nb_tensor *l = logits ? nb_cross_entropy(logits, y, NULL, -100, NB_SUM, 0.0) : NULL;
            if (b < 0 || (b > 0 && !l)) rc = nb_last_error()->code;
            if (rc == NB_OK && b > 0) {
                total += (double)nb_tensor_data(l)[0];
                int64_t classes = nb_tensor_shape(logits)[1];
                const float *lg = nb_tensor_data(logits), *lab = nb_tensor_data(y);
                for (int64_t i = 0; i < b; i++) {
                    uint8_t p = argmax(lg + i * classes, classes);
                    if (predictions) predictions[seen + i] = p;
                    right += p == (uint8_t)lab[i];
                }
                seen += b;
            }
            nb_scope_end(s);
            if (b == 0) break;
        }
    }
    nb_module_train(model, true);
    nb_dataloader_free(dl);
    if (rc == NB_OK) *sums = (eval_sums){total, right, seen};
    return rc;
}

nb_status trainer_evaluate(nb_module *model, const nb_dataset *ds, double *loss, double *accuracy,
                           uint8_t *predictions)
{
    eval_sums e;
    nb_status rc = trainer_evaluate_sums(model, ds, NULL, 0, &e, predictions);
    if (rc == NB_OK) {
        *loss = e.seen ? e.loss_sum / (double)e.seen : 0;
        *accuracy = e.seen ? (double)e.right / (double)e.seen : 0;
    }
    return rc;
}

/* trainer_step, with after_backward (may be NULL) called between backward and the step. */
static nb_status step(nb_module *model, nb_optim *opt, nb_tensor *x, nb_tensor *y, double *loss,
                      trainer_phases *times, const trainer_hooks *h)
{
    double t0 = times ? trainer_now() : 0, t1 = 0, t2 = 0, t3 = 0;
    nb_scope *s = nb_scope_begin();
    /* Grads to None rather than zeros: every parameter gets a gradient each step, and a
     * gradient taken as .grad is the same number as one added into zeros, without a pass
     * that writes zeros and GEMMs that read them. */
    nb_status rc = s ? nb_optim_zero_grad(opt, true) : nb_last_error()->code;
    nb_tensor *l = NULL;
    if (rc == NB_OK) {
        l = nb_cross_entropy(nb_module_forward(model, x), y, NULL, -100, NB_MEAN, 0.0);
        if (times) t1 = trainer_now();
        rc = l ? nb_backward(l, NULL, false) : nb_last_error()->code;
    }
    if (rc == NB_OK && h && h->after_backward) rc = h->after_backward(h->ctx);
    if (times) t2 = trainer_now();
    if (rc == NB_OK) rc = nb_optim_step(opt);
    if (rc == NB_OK) *loss = (double)nb_tensor_data(l)[0];
    if (times) t3 = trainer_now();
    if (s) nb_scope_end(s);
    if (times) *times = (trainer_phases){t1 - t0, t2 - t1, t3 - t2, trainer_now() - t3};
    return rc;
}

nb_status trainer_step(nb_module *model, nb_optim *opt, nb_tensor *x, nb_tensor *y, double *loss,
                       trainer_phases *times)
{
    return step(model, opt, x, y, loss, times, NULL);
}

nb_status trainer_epoch(nb_module *model, nb_optim *opt, nb_dataloader *loader, int epoch,
                        double *train_loss, int64_t *steps_left, const trainer_hooks *hooks)
{
    const trainer_hooks none = {NULL, NULL, NULL}, *h = hooks ? hooks : &none;
    nb_status rc = nb_dataloader_begin_epoch(loader);
    int64_t n_batches = nb_dataloader_num_batches(loader), batch = 0, seen = 0, rows = 0;
    /* One batch of tensors for the epoch, made by the first batch and refilled in place
     * (only the last batch can be short, so with more than one the first is full). */
    bool reuse = n_batches > 1;
    nb_scope *epoch_scope = nb_scope_begin();
    nb_tensor *x = NULL, *y = NULL;
    double total = 0;
    while (rc == NB_OK && !(steps_left && *steps_left == 0)) {
        int64_t b =
            x && reuse ? nb_dataloader_next_into(loader, x, y) : nb_dataloader_next(loader, &x, &y);
        if (b < 0) rc = nb_last_error()->code;
        if (b <= 0) break;
        if (!rows) rows = b;
        nb_scope *s = nb_scope_begin();
        nb_tensor *bx = b < rows ? nb_slice(x, 0, 0, b, 1) : x;
        nb_tensor *by = b < rows ? nb_slice(y, 0, 0, b, 1) : y;
        double l = 0;
        rc = bx && by ? step(model, opt, bx, by, &l, NULL, h) : nb_last_error()->code;
        nb_scope_end(s);
        if (rc == NB_OK) {
            total += l * (double)b;
            seen += b;
            batch++;
            if (steps_left && *steps_left > 0) --*steps_left;
            if (h->on_step) h->on_step(epoch, batch, n_batches, seen, l, h->ctx);
        }
    }
    if (epoch_scope) nb_scope_end(epoch_scope);
    *train_loss = seen ? total / (double)seen : 0;
    return rc;
}

bool trainer_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool trainer_parse_double(const char *s, double lo, bool above, double *out)
{
    char *end;
    if (strpbrk(s, "xX")) return false; /* strtod reads hex floats; Python's float() does not */
    double v = strtod(s, &end);
    if (end == s || *end || !(above ? v > lo : v >= lo)) return false;
    *out = v;
    return true;
}

bool trainer_parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (strchr(s, '-')) { /* strtoull would take "-1" too, and "-2^64" as well */
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end) return false;
        *out = (uint64_t)v;
    } else {
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end) return false;
        *out = v;
    }
    return true;
}

bool trainer_parse_list(const char *s, int64_t lo, int64_t hi, int64_t *out, int max, int *n)
{
    int k = 0;
    for (const char *p = s;; p++) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v < lo || v > hi || k == max || (*end && *end != ','))
            return false;
        out[k++] = v;
        if (!*end) break;
        p = end;
    }
    *n = k;
    return true;
}

bool trainer_missing_value(const char *program, const char *a, const char *v,
                           const char *const *names)
{
    for (; !v && *names; names++)
        if (!strcmp(a, *names)) {
            fprintf(stderr, "%s: option '%s' needs a value\n", program, a);
            return true;
        }
    return false;
}

const char *trainer_save_problem(const char *path)
{
    struct stat st;
    if (!*path) return "an empty path";
    if (!stat(path, &st) && !S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? "is a directory" : "exists and is not a regular file";
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    char *dir = malloc(n + 1);
    if (!dir) return "out of memory";
    memcpy(dir, slash ? path : ".", n);
    dir[n] = 0;
    const char *why = NULL;
    if (stat(dir, &st))
        why = "its directory does not exist";
    else if (!S_ISDIR(st.st_mode))
        why = "its directory is not a directory";
    else if (access(dir, W_OK | X_OK))
        why = "its directory is not writable";
    free(dir);
    return why;
}

nb_status trainer_save_model(nb_module *model, const int64_t *hidden, int n_hidden,
                             const char *path)
{
    char sizes[TRAINER_MAX_HIDDEN * 21] = "";
    for (int i = 0; i < n_hidden; i++)
        snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%lld", i ? "," : "",
                 (long long)hidden[i]);
    nb_state_dict *d = nb_state_dict_new();
    nb_status rc = d ? nb_module_state_dict(model, d) : nb_last_error()->code;
    if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "format", "pt");
    if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "hidden", sizes);
    if (rc == NB_OK) rc = nb_safetensors_save(d, path);
    nb_state_dict_free(d);
    return rc;
}

const char *trainer_sets_mismatch(const nb_dataset *train, const nb_dataset *test, char *buf,
                                  size_t size)
{
    int64_t a = nb_dataset_example_size(train), b = nb_dataset_example_size(test);
    if (a == b) return NULL;
    snprintf(buf, size, "the test examples have %lld values, the training examples %lld",
             (long long)b, (long long)a);
    return buf;
}

const char *trainer_number(char *buf, size_t size, double v, int decimals, bool json)
{
    if (isnan(v))
        snprintf(buf, size, "%s", json ? "NaN" : "nan");
    else if (isinf(v))
        snprintf(buf, size, "%s%s", v < 0 ? "-" : "", json ? "Infinity" : "inf");
    else
        snprintf(buf, size, "%.*f", decimals, v);
    return buf;
}

const char *trainer_stdout_problem(void)
{
    int err = fflush(stdout) ? errno : 0;
    return err ? strerror(err) : ferror(stdout) ? "a write failed" : NULL;
}
